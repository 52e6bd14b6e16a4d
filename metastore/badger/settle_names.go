package badger

import (
	"context"
	"encoding/binary"
	"fmt"

	badgerdb "github.com/dgraph-io/badger/v4"
)

// Settle names the files it puts back or removes (collection/dir/name),
// for its report: rare work, but after a crash in the middle of an untar
// there are thousands in one directory, so each directory concerned is
// listed once.

// nameFiles finds where the files to report are: each directory holding
// some is listed once, and the directories above them are named from the
// subdirectory index of theirs.
func (s *Store) nameFiles(ctx context.Context, txn *badgerdb.Txn, plans []*filePlan) error {
	wanted := map[uint64][]*filePlan{} // by directory
	for _, plan := range plans {
		if plan.Outcome != FileReverted && plan.Outcome != FileRemoved && plan.Outcome != FileUnchecked {
			continue
		}
		parent, err := parentOf(txn, plan.Ino)
		if err != nil {
			plan.Path = fmt.Sprintf("#%d", plan.Ino) // named nowhere
			continue
		}
		plan.parent = parent
		wanted[parent] = append(wanted[parent], plan)
	}
	paths := &dirPaths{txn: txn, folders: map[uint64]string{}, names: map[uint64]string{}, listed: map[uint64]bool{}}
	err := eachJSON(txn, prefixCollection, func(c *Collection) error {
		if c.FolderIno != 0 {
			paths.folders[c.FolderIno] = c.Name
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, plan := range plans {
		for i, r := range plan.replaced {
			path := ""
			if plan.restore[i] != nil {
				path = paths.of(r.Dir, 0) + "/" + r.Name
			}
			plan.replacedPaths = append(plan.replacedPaths, path)
		}
	}
	for dir, inDir := range wanted {
		names, err := entryNames(ctx, txn, inoKey(prefixEntry, dir), 9, inDir)
		if err != nil {
			return err
		}
		dirPath := paths.of(dir, 0)
		for _, plan := range inDir {
			plan.name = names[plan.Ino]
			name := plan.name
			if name == "" {
				name = fmt.Sprintf("#%d", plan.Ino)
			}
			plan.Path = dirPath + "/" + name
		}
	}
	return nil
}

// entryNames scans the keys under prefix (prefix + name -> ino u64 BE,
// in a value of valueLen bytes) for the inodes of plans, and returns their
// names.
func entryNames(ctx context.Context, txn *badgerdb.Txn, prefix []byte, valueLen int, plans []*filePlan) (map[uint64]string, error) {
	want := map[uint64]bool{}
	for _, plan := range plans {
		want[plan.Ino] = true
	}
	names := map[uint64]string{}
	it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix, PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid() && len(names) < len(want); it.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		item := it.Item()
		_ = item.Value(func(v []byte) error {
			if len(v) == valueLen && want[binary.BigEndian.Uint64(v[:8])] {
				names[binary.BigEndian.Uint64(v[:8])] = string(item.Key()[len(prefix):])
			}
			return nil
		})
	}
	return names, nil
}

// dirPaths names directories (collection/dir/...) for a report, from the
// subdirectory index, listing each parent once.
type dirPaths struct {
	txn     *badgerdb.Txn
	folders map[uint64]string // collection folder -> collection
	names   map[uint64]string // directory -> its name in its parent
	listed  map[uint64]bool   // the parents whose subdirectories are in names
}

func (p *dirPaths) of(dir uint64, depth int) string {
	if name, ok := p.folders[dir]; ok {
		return name
	}
	parent, err := parentOf(p.txn, dir)
	if err != nil || depth > 4096 {
		return fmt.Sprintf("#%d", dir)
	}
	if !p.listed[parent] {
		p.listed[parent] = true
		p.listSubdirs(parent)
	}
	name, ok := p.names[dir]
	if !ok {
		name = fmt.Sprintf("#%d", dir)
	}
	return p.of(parent, depth+1) + "/" + name
}

func (p *dirPaths) listSubdirs(parent uint64) {
	prefix := inoKey(prefixSubdir, parent)
	it := p.txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix, PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		_ = item.Value(func(v []byte) error {
			if len(v) == 8 {
				p.names[binary.BigEndian.Uint64(v)] = string(item.Key()[len(prefix):])
			}
			return nil
		})
	}
}
