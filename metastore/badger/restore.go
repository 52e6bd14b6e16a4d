package badger

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	badgerdb "github.com/dgraph-io/badger/v4"
)

// Restorer writes a files/ tree back from a snapshot (recovery): inodes
// keep the numbers they had, so that rsync and tar see the same files. It
// writes in batches, not a transaction per entry; the tree is not to be
// used until Finish returns.
type Restorer struct {
	s       *Store
	batch   *badgerdb.WriteBatch
	folders map[string]uint64 // collection -> folder inode
	maxIno  uint64
	seen    map[uint64]bool
	// linked are the inodes with several names restored so far, with
	// the names found for each, per directory.
	linked map[uint64]*restoredLinks
}

type restoredLinks struct {
	inode  *Inode
	xattrs []Xattr
	names  uint32
	dirs   map[uint64]uint32
}

// NewRestorer starts restoring trees into s.
func (s *Store) NewRestorer() *Restorer {
	return &Restorer{s: s, batch: s.db.NewWriteBatch(), folders: map[string]uint64{}, seen: map[uint64]bool{},
		linked: map[uint64]*restoredLinks{}}
}

// Folder restores the folder files/<collection> as inode n, with its
// extended attributes.
func (r *Restorer) Folder(collection string, n *Inode, xattrs []Xattr) error {
	if err := r.inode(n, xattrs); err != nil {
		return err
	}
	r.folders[collection] = n.Ino
	return nil
}

// Add restores n, named name in directory parent, with its extended
// attributes. An inode with several names (n.Nlink above 1) is added once
// per name, with the same record: the first writes it, the others link
// it.
func (r *Restorer) Add(parent uint64, name string, n *Inode, xattrs []Xattr) error {
	if links := r.linked[n.Ino]; links != nil {
		return r.addLink(parent, name, n, xattrs, links)
	}
	if err := r.inode(n, xattrs); err != nil {
		return err
	}
	if n.Linked() {
		linked := *n
		linked.HasXattrs = len(xattrs) > 0
		r.linked[n.Ino] = &restoredLinks{inode: &linked, xattrs: xattrs, names: 1, dirs: map[uint64]uint32{parent: 1}}
	}
	e := Entry{Name: name, Ino: n.Ino, Kind: n.Kind}
	sets := [][2][]byte{
		{entryKey(parent, name), append(binary.BigEndian.AppendUint64(nil, n.Ino), byte(n.Kind))},
		{inoKey(prefixParent, n.Ino), binary.BigEndian.AppendUint64(nil, parent)},
	}
	switch e.Kind {
	case KindDir:
		sets = append(sets, [2][]byte{subdirKey(parent, name), binary.BigEndian.AppendUint64(nil, n.Ino)})
	case KindFile:
		if n.Committed {
			sets = append(sets, [2][]byte{refUseKey(n.Ref, n.Ino), nil})
		}
	}
	for _, kv := range sets {
		if err := r.batch.Set(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// addLink restores another name of a linked inode, which must be the
// same inode the first name restored.
func (r *Restorer) addLink(parent uint64, name string, n *Inode, xattrs []Xattr, links *restoredLinks) error {
	if first := links.inode; n.Kind != first.Kind || n.Ref != first.Ref || n.Size != first.Size ||
		n.Mode != first.Mode || n.UID != first.UID || n.GID != first.GID || !n.Mtime.Equal(first.Mtime) ||
		!slices.EqualFunc(xattrs, links.xattrs, func(a, b Xattr) bool { return a.Name == b.Name && bytes.Equal(a.Value, b.Value) }) {
		return fmt.Errorf("restoring inode %d: its names disagree on its attributes: %w", n.Ino, errBadRecord)
	}
	links.names++
	links.dirs[parent]++
	return r.batch.Set(entryKey(parent, name), append(binary.BigEndian.AppendUint64(nil, n.Ino), byte(n.Kind)))
}

// finishLinks writes the directories holding each linked inode's names,
// and its link count as the names found say (a snapshot of a collection
// holds every name of its inodes, so they agree unless it is damaged).
func (r *Restorer) finishLinks() error {
	for ino, links := range r.linked {
		if links.names != links.inode.Nlink {
			n := *links.inode
			n.Nlink = links.names
			if err := r.batch.Set(inoKey(prefixInode, ino), encodeInode(&n)); err != nil {
				return err
			}
		}
		if links.names < 2 {
			continue
		}
		for dir, count := range links.dirs {
			if err := r.batch.Set(linkDirKey(ino, dir), binary.BigEndian.AppendUint32(nil, count)); err != nil {
				return err
			}
		}
	}
	return nil
}

// inode writes n's record, marked as having xattrs if it has any, and
// its xattrs.
func (r *Restorer) inode(n *Inode, xattrs []Xattr) error {
	if n.Ino&TreeInoBase == 0 || r.seen[n.Ino] {
		return fmt.Errorf("restoring inode %d: not a tree inode, or twice: %w", n.Ino, errBadRecord)
	}
	r.seen[n.Ino] = true
	r.maxIno = max(r.maxIno, n.Ino&^TreeInoBase)
	for _, x := range xattrs {
		if err := r.batch.Set(xattrKey(n.Ino, x.Name), x.Value); err != nil {
			return err
		}
	}
	stored := *n
	stored.HasXattrs = len(xattrs) > 0
	return r.batch.Set(inoKey(prefixInode, n.Ino), encodeInode(&stored))
}

// Finish writes what is left, points the collections at their folders,
// and makes new inode numbers start after the restored ones.
func (r *Restorer) Finish(ctx context.Context) error {
	if err := r.finishLinks(); err != nil {
		return err
	}
	if err := r.batch.Flush(); err != nil {
		return err
	}
	if err := r.s.countDirLinks(); err != nil { // and syncs: the tree, before the folders point to it
		return err
	}
	return r.s.updateDurable(func(txn *badgerdb.Txn) error {
		for name, folder := range r.folders {
			var c Collection
			if err := getJSON(txn, stringKey(prefixCollection, name), fmt.Sprintf("collection %q", name), &c); err != nil {
				return err
			}
			c.FolderIno = folder
			if err := putJSON(txn, stringKey(prefixCollection, name), c); err != nil {
				return err
			}
		}
		next := (r.maxIno/inoBlock + 1) * inoBlock
		return txn.Set(stringKey(prefixSetting, "next-ino"), binary.BigEndian.AppendUint64(nil, next))
	})
}

// Cancel drops what was not written yet.
func (r *Restorer) Cancel() { r.batch.Cancel() }
