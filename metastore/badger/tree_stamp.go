package badger

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/stofuse/stofuse/blobstore"
)

// What a snapshot needs from the tree, kept as the tree changes, in the
// transaction of each change:
//   - every inode's parent (p), so that a change to an entry's attributes
//     marks the directory that lists it;
//   - the directories alone (d), so that a snapshot walks them without
//     listing their files;
//   - a stamp per directory (g), written (never read) by every change to
//     its listing or to its entries' attributes, so that changes in one
//     directory do not conflict with each other;
//   - the tree ref a snapshot made of each directory (t), with the stamp
//     it was made at: still right while g holds that stamp.
//
// Stores made before these keys existed get p and d once, when opened
// (treeIndexVersion).

// treeIndexVersion is the setting "tree-index" once p is kept for every
// inode and d for every directory.
const treeIndexVersion = 1

// nextStamp returns a stamp larger than any before it in this store:
// the clock, or one more than the last stamp when the clock has not moved
// on (stamps of an earlier process are older clock readings).
func (s *Store) nextStamp() uint64 {
	now := uint64(time.Now().UnixNano())
	for {
		last := s.lastStamp.Load()
		next := max(now, last+1)
		if s.lastStamp.CompareAndSwap(last, next) {
			return next
		}
	}
}

// touchDir records, in txn, that dir's listing changed.
func (s *Store) touchDir(txn *badgerdb.Txn, dir uint64) error {
	return txn.Set(inoKey(prefixDirStamp, dir), binary.BigEndian.AppendUint64(nil, s.nextStamp()))
}

// touchParentOf records, in txn, that an attribute of ino changed: the
// directory that lists it changed. A collection's folder has no parent.
func (s *Store) touchParentOf(txn *badgerdb.Txn, ino uint64) error {
	parent, err := parentOf(txn, ino)
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.touchDir(txn, parent)
}

func parentOf(txn *badgerdb.Txn, ino uint64) (uint64, error) {
	body, err := getCopy(txn, inoKey(prefixParent, ino), "parent")
	if err != nil {
		return 0, err
	}
	if len(body) != 8 {
		return 0, fmt.Errorf("parent of inode %d: %w", ino, errBadRecord)
	}
	return binary.BigEndian.Uint64(body), nil
}

// link records, in txn, that ino (of kind) is named name in parent:
// its entry, its parent, the subdirectory index, and parent's stamp.
func (s *Store) link(txn *badgerdb.Txn, parent uint64, e Entry) error {
	if err := putEntry(txn, parent, e); err != nil {
		return err
	}
	if err := txn.Set(inoKey(prefixParent, e.Ino), binary.BigEndian.AppendUint64(nil, parent)); err != nil {
		return err
	}
	if e.Kind == KindDir {
		if err := txn.Set(subdirKey(parent, e.Name), binary.BigEndian.AppendUint64(nil, e.Ino)); err != nil {
			return err
		}
	}
	if err := s.touchDir(txn, parent); err != nil {
		return err
	}
	return listingChanged(txn, parent, subdirs(e.Kind, 1))
}

// subdirs is the change to a directory's subdirectories that naming (by
// is +1) or unnaming (-1) an inode of kind in it makes.
func subdirs(kind Kind, by int) int {
	if kind == KindDir {
		return by
	}
	return 0
}

// listingChanged sets, in txn, the mtime and ctime of directory dir to
// now: an entry was made or removed in it (POSIX), and its link count
// (2 + its subdirectories) changes by delta. This reads and writes the
// directory's inode, so two such changes to one directory conflict; the
// kernel makes them one at a time anyway (it holds the directory's lock
// while it makes or removes a name).
func listingChanged(txn *badgerdb.Txn, dir uint64, delta int) error {
	n, err := getInode(txn, dir)
	if err != nil {
		return err
	}
	now := time.Now()
	n.Mtime, n.Ctime = now, now
	n.Nlink = uint32(max(int(n.DirLinks())+delta, 2))
	return putInode(txn, n)
}

// unlink removes, in txn, the name name (of an inode of kind) of parent
// that link made (the inode's own records are the caller's).
func (s *Store) unlink(txn *badgerdb.Txn, parent uint64, name string, kind Kind) error {
	for _, key := range [][]byte{entryKey(parent, name), subdirKey(parent, name)} {
		if err := txn.Delete(key); err != nil {
			return err
		}
	}
	if err := s.touchDir(txn, parent); err != nil {
		return err
	}
	return listingChanged(txn, parent, subdirs(kind, -1))
}

// migrateTreeIndex writes p for every inode and d for every directory of
// a store made before they were kept. It runs when the store is opened,
// before anything can change the tree.
func (s *Store) migrateTreeIndex() error {
	var version int
	err := s.view(func(txn *badgerdb.Txn) error {
		return getJSON(txn, stringKey(prefixSetting, "tree-index"), "tree index", &version)
	})
	if err == nil && version >= treeIndexVersion {
		return nil
	}
	if err != nil && !isNotExist(err) {
		return err
	}
	batch := s.db.NewWriteBatch()
	defer batch.Cancel()
	err = s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixEntry}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := indexEntry(batch, it.Item()); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = batch.Flush()
	}
	if err == nil {
		err = s.syncDB() // the index, before the setting that says it is there
	}
	if err != nil {
		return fmt.Errorf("indexing the files/ tree for snapshots: %w", err)
	}
	return s.updateDurable(func(txn *badgerdb.Txn) error {
		return putJSON(txn, stringKey(prefixSetting, "tree-index"), treeIndexVersion)
	})
}

// dirLinksVersion is the setting "dir-links" once every directory's
// record carries its link count (2 and its subdirectories).
const dirLinksVersion = 1

// migrateDirLinks gives the directories of a store made before their link
// counts were kept their counts, from the subdirectory index, once.
func (s *Store) migrateDirLinks() error {
	var version int
	err := s.view(func(txn *badgerdb.Txn) error {
		return getJSON(txn, stringKey(prefixSetting, "dir-links"), "directory link counts", &version)
	})
	if err == nil && version >= dirLinksVersion {
		return nil
	}
	if err != nil && !isNotExist(err) {
		return err
	}
	if err := s.countDirLinks(); err != nil {
		return fmt.Errorf("counting the subdirectories of the files/ tree: %w", err)
	}
	return s.updateDurable(func(txn *badgerdb.Txn) error {
		return putJSON(txn, stringKey(prefixSetting, "dir-links"), dirLinksVersion)
	})
}

// countDirLinks sets every directory's link count from the subdirectory
// index (d), in one pass, before anything can change the tree (an open, a
// restore).
func (s *Store) countDirLinks() error {
	counts := map[uint64]uint32{}
	batch := s.db.NewWriteBatch()
	defer batch.Cancel()
	err := s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixSubdir}})
		for it.Rewind(); it.Valid(); it.Next() {
			if key := it.Item().Key(); len(key) > 9 {
				counts[binary.BigEndian.Uint64(key[1:9])]++
			}
		}
		it.Close()
		for dir, subdirs := range counts {
			n, err := getInode(txn, dir)
			if isNotExist(err) {
				continue // a stale index entry: nothing to count for
			}
			if err != nil {
				return err
			}
			n.Nlink = 2 + subdirs
			if err := batch.Set(inoKey(prefixInode, dir), encodeInode(n)); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = batch.Flush()
	}
	if err == nil {
		err = s.syncDB() // the counts, before the setting that says they are there
	}
	return err
}

func indexEntry(batch *badgerdb.WriteBatch, item *badgerdb.Item) error {
	key := item.KeyCopy(nil)
	value, err := item.ValueCopy(nil)
	if err != nil || len(value) != 9 || len(key) < 9 {
		return fmt.Errorf("entry %q: %w", key, errBadRecord)
	}
	parent, name := binary.BigEndian.Uint64(key[1:9]), string(key[9:])
	ino := binary.BigEndian.Uint64(value[:8])
	if err := batch.Set(inoKey(prefixParent, ino), binary.BigEndian.AppendUint64(nil, parent)); err != nil {
		return err
	}
	if Kind(value[8]) == KindDir {
		return batch.Set(subdirKey(parent, name), binary.BigEndian.AppendUint64(nil, ino))
	}
	return nil
}

// TreeView is a read-only view of the files/ tree as it was when the view
// began, whatever changes after: what a snapshot encodes.
type TreeView struct {
	txn *badgerdb.Txn
}

// ViewTree calls fn with a view of the tree. The view is valid only
// during fn; changes to the tree go on meanwhile, unseen by it.
func (s *Store) ViewTree(ctx context.Context, fn func(*TreeView) error) error {
	return s.view(func(txn *badgerdb.Txn) error { return fn(&TreeView{txn: txn}) })
}

// Inode returns an inode as the view sees it, or an fs.ErrNotExist error.
func (v *TreeView) Inode(ino uint64) (*Inode, error) { return getInode(v.txn, ino) }

// ReadDir calls fn for the entries of directory dir in name (byte) order.
func (v *TreeView) ReadDir(ctx context.Context, dir uint64, fn func(Entry) error) error {
	prefix := inoKey(prefixEntry, dir)
	it := v.txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 256})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		item := it.Item()
		name := string(item.Key()[len(prefix):])
		var e Entry
		err := item.Value(func(b []byte) error {
			if len(b) != 9 {
				return fmt.Errorf("entry %q in directory %d: %w", name, dir, errBadRecord)
			}
			e = Entry{Name: name, Ino: binary.BigEndian.Uint64(b[:8]), Kind: Kind(b[8])}
			return nil
		})
		if err == nil {
			err = fn(e)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Subdirs calls fn for the subdirectories of dir in name order, without
// reading its other entries.
func (v *TreeView) Subdirs(ctx context.Context, dir uint64, fn func(name string, ino uint64) error) error {
	prefix := inoKey(prefixSubdir, dir)
	it := v.txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix, PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		name := string(item.Key()[len(prefix):])
		var ino uint64
		err := item.Value(func(b []byte) error {
			if len(b) != 8 {
				return fmt.Errorf("subdirectory %q of %d: %w", name, dir, errBadRecord)
			}
			ino = binary.BigEndian.Uint64(b)
			return nil
		})
		if err == nil {
			err = fn(name, ino)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// CachedTree is a directory's tree ref as a snapshot made it, at Stamp.
type CachedTree struct {
	Dir   uint64
	Stamp uint64
	Ref   blobstore.Ref
}

// DirTree returns dir's stamp as the view sees it, and the cached tree
// ref if it is still valid (ok: dir changed nothing since it was made).
func (v *TreeView) DirTree(dir uint64) (stamp uint64, cached blobstore.Ref, ok bool, err error) {
	body, err := getCopy(v.txn, inoKey(prefixDirStamp, dir), "directory stamp")
	switch {
	case err == nil && len(body) == 8:
		stamp = binary.BigEndian.Uint64(body)
	case err == nil:
		return 0, cached, false, fmt.Errorf("stamp of directory %d: %w", dir, errBadRecord)
	case !isNotExist(err):
		return 0, cached, false, err
	}
	body, err = getCopy(v.txn, inoKey(prefixTreeCache, dir), "cached tree")
	if isNotExist(err) {
		return stamp, cached, false, nil
	}
	if err != nil {
		return 0, cached, false, err
	}
	if len(body) != 8+blobstore.RefSize {
		return stamp, cached, false, nil // not ours to trust: made again
	}
	copy(cached[:], body[8:])
	return stamp, cached, binary.BigEndian.Uint64(body[:8]) == stamp, nil
}

// SetCachedTrees records the tree refs a snapshot made. A directory
// changed since (its stamp moved on) keeps being made again.
func (s *Store) SetCachedTrees(ctx context.Context, trees []CachedTree) error {
	batch := s.db.NewWriteBatch()
	defer batch.Cancel()
	for _, t := range trees {
		value := append(binary.BigEndian.AppendUint64(nil, t.Stamp), t.Ref[:]...)
		if err := batch.Set(inoKey(prefixTreeCache, t.Dir), value); err != nil {
			return err
		}
	}
	return batch.Flush()
}
