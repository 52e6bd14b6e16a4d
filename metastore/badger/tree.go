package badger

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"syscall"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore"
)

// The files/ tree: directories, files and symlinks, each change one
// transaction, so that a crash never leaves half an operation behind. The
// roots of the tree are the collections' folders.
//
// Errors carry the errno a filesystem answers with: fs.ErrNotExist,
// fs.ErrExist, syscall.ENOTEMPTY, ENOTDIR, EISDIR, EXDEV.

// TreeInoBase is metastore.TreeInoBase.
const TreeInoBase = metastore.TreeInoBase

// inoBlock is how many inode numbers a Store claims at a time, so that
// creating files does not contend on one counter.
const inoBlock = 1024

func getInode(txn *badgerdb.Txn, ino uint64) (*Inode, error) {
	body, err := getCopy(txn, inoKey(prefixInode, ino), fmt.Sprintf("inode %d", ino))
	if err != nil {
		return nil, err
	}
	return decodeInode(ino, body)
}

func putInode(txn *badgerdb.Txn, n *Inode) error {
	return txn.Set(inoKey(prefixInode, n.Ino), encodeInode(n))
}

func getEntry(txn *badgerdb.Txn, parent uint64, name string) (Entry, error) {
	body, err := getCopy(txn, entryKey(parent, name), fmt.Sprintf("%q in directory %d", name, parent))
	if err != nil {
		return Entry{}, err
	}
	if len(body) != 9 {
		return Entry{}, fmt.Errorf("entry %q in directory %d: %w", name, parent, errBadRecord)
	}
	return Entry{Name: name, Ino: binary.BigEndian.Uint64(body[:8]), Kind: Kind(body[8])}, nil
}

func putEntry(txn *badgerdb.Txn, parent uint64, e Entry) error {
	value := append(binary.BigEndian.AppendUint64(nil, e.Ino), byte(e.Kind))
	return txn.Set(entryKey(parent, e.Name), value)
}

// newIno hands out an inode number from the block this Store claimed.
func (s *Store) newIno() (uint64, error) {
	s.inoMu.Lock()
	defer s.inoMu.Unlock()
	if s.inoNext == s.inoEnd {
		var start uint64
		err := s.updateDurable(func(txn *badgerdb.Txn) error {
			start = 1
			body, err := getCopy(txn, stringKey(prefixSetting, "next-ino"), "next inode")
			if err == nil && len(body) == 8 {
				start = binary.BigEndian.Uint64(body)
			} else if err != nil && !isNotExist(err) {
				return err
			}
			return txn.Set(stringKey(prefixSetting, "next-ino"), binary.BigEndian.AppendUint64(nil, start+inoBlock))
		})
		if err != nil {
			return 0, err
		}
		s.inoNext, s.inoEnd = start, start+inoBlock
	}
	ino := TreeInoBase | s.inoNext
	s.inoNext++
	return ino, nil
}

// Inode returns an inode, or an fs.ErrNotExist error.
func (s *Store) Inode(ctx context.Context, ino uint64) (*Inode, error) {
	var n *Inode
	err := s.view(func(txn *badgerdb.Txn) (err error) {
		n, err = getInode(txn, ino)
		return err
	})
	return n, err
}

// Lookup returns the inode named name in directory parent.
func (s *Store) Lookup(ctx context.Context, parent uint64, name string) (*Inode, error) {
	var n *Inode
	err := s.view(func(txn *badgerdb.Txn) error {
		e, err := getEntry(txn, parent, name)
		if err != nil {
			return err
		}
		n, err = getInode(txn, e.Ino)
		return err
	})
	return n, err
}

// ReadDir calls fn for the entries of directory parent in name order,
// starting after the name after ("" for the start), reading keys only.
func (s *Store) ReadDir(ctx context.Context, parent uint64, after string, fn func(Entry) error) error {
	prefix := inoKey(prefixEntry, parent)
	return s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix, PrefetchValues: false})
		defer it.Close()
		start := prefix
		if after != "" {
			start = append(entryKey(parent, after), 0)
		}
		for it.Seek(start); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			item := it.Item()
			var e Entry
			err := item.Value(func(v []byte) error {
				if len(v) != 9 {
					return errBadRecord
				}
				e = Entry{Name: string(item.Key()[len(prefix):]), Ino: binary.BigEndian.Uint64(v[:8]), Kind: Kind(v[8])}
				return nil
			})
			if err != nil {
				return err
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	})
}

// hasEntries reports whether directory ino has any entry.
func hasEntries(txn *badgerdb.Txn, ino uint64) bool {
	prefix := inoKey(prefixEntry, ino)
	it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix})
	defer it.Close()
	it.Rewind()
	return it.Valid()
}

// Create makes a new inode (file, directory or symlink) named name in
// directory parent. A file is uncommitted until CommitContent: if the
// store is reopened first, RemoveUncommitted removes it. The name must be
// free (fs.ErrExist).
func (s *Store) Create(ctx context.Context, parent uint64, name string, n *Inode) (*Inode, error) {
	ino, err := s.newIno()
	if err != nil {
		return nil, err
	}
	created := *n
	created.Ino = ino
	created.Nlink = 0 // one name
	err = s.update(func(txn *badgerdb.Txn) error {
		if err := s.checkFreeName(txn, parent, name); err != nil {
			return err
		}
		if err := putInode(txn, &created); err != nil {
			return err
		}
		if created.Kind == KindFile && !created.Committed {
			if err := txn.Set(inoKey(prefixUncommitted, ino), nil); err != nil {
				return err
			}
		}
		return s.link(txn, parent, Entry{Name: name, Ino: ino, Kind: created.Kind})
	})
	if err != nil {
		return nil, err
	}
	return &created, nil
}

// checkFreeName checks that directory parent exists and has no entry
// name (fs.ErrExist).
func (s *Store) checkFreeName(txn *badgerdb.Txn, parent uint64, name string) error {
	if err := s.checkDir(txn, parent); err != nil {
		return err
	}
	found, err := exists(txn, entryKey(parent, name))
	if err == nil && found {
		err = fmt.Errorf("%q: %w", name, fs.ErrExist)
	}
	return err
}

// checkDir checks that ino is a directory of the tree (a collection's
// folder is one).
func (s *Store) checkDir(txn *badgerdb.Txn, ino uint64) error {
	n, err := getInode(txn, ino)
	if err != nil {
		return err
	}
	if n.Kind != KindDir {
		return fmt.Errorf("inode %d: %w", ino, syscall.ENOTDIR)
	}
	return nil
}

// Remove removes name from directory parent: a file or symlink (dir
// false), or an empty directory (dir true: ENOTEMPTY otherwise). The
// inode is returned as the removal leaves it: with Nlink 0 if that was its
// last name and it is gone. A file's blob stays in the store.
func (s *Store) Remove(ctx context.Context, parent uint64, name string, dir bool) (*Inode, error) {
	var removed *Inode
	err := s.update(func(txn *badgerdb.Txn) error {
		e, err := getEntry(txn, parent, name)
		if err != nil {
			return err
		}
		switch {
		case dir && e.Kind != KindDir:
			return fmt.Errorf("%q: %w", name, syscall.ENOTDIR)
		case !dir && e.Kind == KindDir:
			return fmt.Errorf("%q: %w", name, syscall.EISDIR)
		case dir && hasEntries(txn, e.Ino):
			return fmt.Errorf("%q: %w", name, syscall.ENOTEMPTY)
		}
		n, err := getInode(txn, e.Ino)
		if err != nil {
			return err
		}
		removed, err = s.dropName(txn, parent, name, n)
		return err
	})
	return removed, err
}

// RemoveUnstored removes the file named name in directory parent if it is
// inode ino and its content was never stored (created, and its first
// store failed), with every name it has, so that it does not stay behind
// looking like an empty file that is complete. It reports whether it
// removed it.
func (s *Store) RemoveUnstored(ctx context.Context, parent uint64, name string, ino uint64) (bool, error) {
	removed := false
	err := s.update(func(txn *badgerdb.Txn) error {
		e, err := getEntry(txn, parent, name)
		if isNotExist(err) {
			return nil
		}
		if err != nil || e.Ino != ino {
			return err
		}
		n, err := getInode(txn, ino)
		if err != nil || n.Kind != KindFile || n.Committed {
			return err
		}
		removed = true
		return s.deleteInode(txn, parent, name, ino)
	})
	return removed, err
}

// deleteInode removes, in txn, inode ino with every name it has (one,
// name in parent, unless it is linked).
func (s *Store) deleteInode(txn *badgerdb.Txn, parent uint64, name string, ino uint64) error {
	n, err := getInode(txn, ino)
	if err != nil {
		return err
	}
	if err := s.unlink(txn, parent, name, n.Kind); err != nil {
		return err
	}
	if n.Linked() {
		if err := s.removeOtherNames(txn, ino, parent, name); err != nil {
			return err
		}
	}
	if err := deleteXattrs(txn, n); err != nil {
		return err
	}
	keys := [][]byte{inoKey(prefixInode, ino), inoKey(prefixUncommitted, ino), inoKey(prefixParent, ino),
		inoKey(prefixDirStamp, ino), inoKey(prefixTreeCache, ino)}
	if n.Kind == KindFile && n.Committed {
		keys = append(keys, refUseKey(n.Ref, ino))
	}
	for _, key := range keys {
		if err := txn.Delete(key); err != nil {
			return err
		}
	}
	return nil
}

// Rename moves oldName in oldParent to newName in newParent, replacing
// what newName was, as rename(2) does: a file replaces a file or symlink,
// a directory replaces an empty directory. With noReplace, an existing
// newName is fs.ErrExist. The replaced inode, if any, is returned.
func (s *Store) Rename(ctx context.Context, oldParent uint64, oldName string, newParent uint64, newName string, noReplace bool) (*Inode, error) {
	var replaced *Inode
	err := s.update(func(txn *badgerdb.Txn) error {
		moving, err := getEntry(txn, oldParent, oldName)
		if err != nil {
			return err
		}
		if err := s.checkDir(txn, newParent); err != nil {
			return err
		}
		if moving.Kind == KindDir && (moving.Ino == newParent || isAncestor(txn, moving.Ino, newParent)) {
			return fmt.Errorf("moving %q into itself: %w", oldName, syscall.EINVAL)
		}
		n, err := getInode(txn, moving.Ino)
		if err != nil {
			return err
		}
		switch {
		case n.Linked():
			if err := sameCollection(txn, oldParent, newParent); err != nil {
				return err
			}
		case n.Kind == KindDir:
			if err := s.linksStayTogether(txn, moving.Ino, oldParent, newParent); err != nil {
				return err
			}
		}
		target, err := getEntry(txn, newParent, newName)
		switch {
		case isNotExist(err):
		case err != nil:
			return err
		case target.Ino == moving.Ino:
			return nil // the same inode: nothing to do
		case noReplace:
			return fmt.Errorf("%q: %w", newName, fs.ErrExist)
		default:
			// The replaced file's xattrs, kept for Settle with its record
			// (journalReplacedBy) if it may have to put it back.
			var xattrs []Xattr
			if kept, err := getInode(txn, target.Ino); err == nil && kept.HasXattrs {
				if xattrs, err = xattrsOf(txn, target.Ino); err != nil {
					return err
				}
			}
			if replaced, err = s.replaceTarget(txn, moving, newParent, target); err != nil {
				return err
			}
			// What Settle may have to put back: the file (gone with its
			// name), or the name (of a file that has others).
			journaled, err := s.journalReplacedBy(txn, moving.Ino, newParent, newName, replaced)
			if err != nil {
				return err
			}
			for _, x := range xattrs {
				if !journaled || replaced.Nlink != 0 {
					break // the file lives on with its xattrs
				}
				if err := txn.Set(xattrKey(target.Ino, x.Name), x.Value); err != nil {
					return err
				}
			}
		}
		if err := s.unlink(txn, oldParent, oldName, moving.Kind); err != nil {
			return err
		}
		moving.Name = newName
		if err := s.link(txn, newParent, moving); err != nil {
			return err
		}
		if n.Linked() {
			if err := s.moveLink(txn, n, oldParent, newParent); err != nil {
				return err
			}
		}
		// rename(2) sets the moved inode's ctime, as Linux filesystems do.
		n.Ctime = time.Now()
		if err := putInode(txn, n); err != nil {
			return err
		}
		return s.touchParentsOf(txn, n)
	})
	return replaced, err
}

// replaceTarget removes the target of a rename, after checking that the
// moving inode may replace it, and returns it as dropName leaves it.
func (s *Store) replaceTarget(txn *badgerdb.Txn, moving Entry, parent uint64, target Entry) (*Inode, error) {
	switch {
	case moving.Kind == KindDir && target.Kind != KindDir:
		return nil, fmt.Errorf("%q: %w", target.Name, syscall.ENOTDIR)
	case moving.Kind != KindDir && target.Kind == KindDir:
		return nil, fmt.Errorf("%q: %w", target.Name, syscall.EISDIR)
	case target.Kind == KindDir && hasEntries(txn, target.Ino):
		return nil, fmt.Errorf("%q: %w", target.Name, syscall.ENOTEMPTY)
	}
	replaced, err := getInode(txn, target.Ino)
	if err != nil {
		return nil, err
	}
	return s.dropName(txn, parent, target.Name, replaced)
}

// isAncestor reports whether dir is an ancestor of ino, following the
// parent pointers.
func isAncestor(txn *badgerdb.Txn, dir, ino uint64) bool {
	for depth := 0; depth < 4096; depth++ {
		body, err := getCopy(txn, inoKey(prefixParent, ino), "parent")
		if err != nil || len(body) != 8 {
			return false
		}
		ino = binary.BigEndian.Uint64(body)
		if ino == dir {
			return true
		}
	}
	return false
}

// SetAttr applies fn to an inode and stores it, in one transaction. A
// change that changes nothing (cp -a and rsync -a set the owner and mode a
// file has already) writes nothing.
func (s *Store) SetAttr(ctx context.Context, ino uint64, fn func(*Inode) error) (*Inode, error) {
	n, err := s.Inode(ctx, ino)
	if err != nil {
		return nil, err
	}
	changed := *n
	if err := fn(&changed); err != nil {
		return nil, err
	}
	if changed == *n {
		return n, nil
	}
	err = s.update(func(txn *badgerdb.Txn) (err error) {
		if n, err = getInode(txn, ino); err != nil {
			return err
		}
		if err := fn(n); err != nil {
			return err
		}
		n.Ctime = time.Now()
		if err := putInode(txn, n); err != nil {
			return err
		}
		return s.touchParentsOf(txn, n)
	})
	return n, err
}

// FilesUsing returns how many files of the tree have blob ref as their
// content.
func (s *Store) FilesUsing(ctx context.Context, ref blobstore.Ref) (int, error) {
	prefix := append([]byte{prefixRefUse}, ref[:]...)
	count := 0
	err := s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			count++
		}
		return nil
	})
	return count, err
}

// RemoveUncommitted removes the files that were created but never stored
// (the mount that made them stopped first), with their names. It runs
// when the tree is mounted, and returns how many it removed.
func (s *Store) RemoveUncommitted(ctx context.Context) (int, error) {
	var inos []uint64
	err := s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixUncommitted}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			inos = append(inos, binary.BigEndian.Uint64(it.Item().Key()[1:]))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, ino := range inos {
		if err := s.removeOrphan(ino); err != nil {
			return 0, err
		}
	}
	return len(inos), nil
}

// removeOrphan removes an uncommitted inode and the entry naming it; the
// entry is found by a scan, which is rare (after a crash) and bounded by
// the tree's size.
func (s *Store) removeOrphan(ino uint64) error {
	return s.update(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixEntry}})
		var entryKeys [][]byte
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			_ = item.Value(func(v []byte) error {
				if len(v) == 9 && binary.BigEndian.Uint64(v[:8]) == ino {
					entryKeys = append(entryKeys, item.KeyCopy(nil))
				}
				return nil
			})
		}
		it.Close()
		for _, key := range entryKeys {
			if err := s.unlink(txn, binary.BigEndian.Uint64(key[1:9]), string(key[9:]), KindFile); err != nil { // an uncommitted file
				return err
			}
		}
		dirs, err := linkDirs(txn, ino)
		if err != nil {
			return err
		}
		if n, err := getInode(txn, ino); err == nil {
			if err := deleteXattrs(txn, n); err != nil {
				return err
			}
		}
		keys := [][]byte{inoKey(prefixInode, ino), inoKey(prefixUncommitted, ino), inoKey(prefixParent, ino)}
		for _, dir := range dirs {
			keys = append(keys, linkDirKey(ino, dir))
		}
		for _, key := range keys {
			if err := txn.Delete(key); err != nil {
				return err
			}
		}
		return nil
	})
}
