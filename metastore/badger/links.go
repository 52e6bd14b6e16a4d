package badger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"
)

// Hard links. A file, symlink or special file may have several names, in
// one collection: its inode keeps the count (Inode.Nlink), each name is an
// entry like any other, and while there is more than one name the inode
// lists the directories that hold them:
//
//	l <ino u64 BE> <dir u64 BE>  how many names of ino dir holds (u32 BE)
//
// so that a change to the inode marks every directory listing it for the
// next snapshot, and a rename can keep p (the inode's parent) naming a
// directory that still holds one of its names. An inode with one name has
// no l keys: nothing is written for files that are never linked.

// MaxLinks is the most names an inode may have (ext4's limit): link(2)
// beyond it is EMLINK.
const MaxLinks = 65000

func linkDirKey(ino, dir uint64) []byte {
	return binary.BigEndian.AppendUint64(inoKey(prefixLinkDir, ino), dir)
}

// Link gives inode ino the name name in directory parent, as link(2)
// does: ino must not be a directory (EPERM), name must be free
// (fs.ErrExist), parent must be in the collection that holds ino's
// other names (EXDEV). It returns the inode with its new link count.
func (s *Store) Link(ctx context.Context, ino uint64, parent uint64, name string) (*Inode, error) {
	var linked *Inode
	err := s.update(func(txn *badgerdb.Txn) error {
		n, err := getInode(txn, ino)
		if err != nil {
			return err
		}
		switch {
		case n.Kind == KindDir:
			return fmt.Errorf("a directory: %w", syscall.EPERM)
		case n.Links() >= MaxLinks:
			return fmt.Errorf("inode %d has %d names: %w", ino, n.Links(), syscall.EMLINK)
		}
		if err := s.checkFreeName(txn, parent, name); err != nil {
			return err
		}
		linked = n
		return s.addName(txn, n, parent, name)
	})
	return linked, err
}

// addName gives inode n (not a directory, below MaxLinks names) the free
// name name in directory parent, in txn, and sets n to its new record: the
// link count, the directories holding its names, its ctime.
func (s *Store) addName(txn *badgerdb.Txn, n *Inode, parent uint64, name string) error {
	first, err := parentOf(txn, n.Ino)
	if err != nil {
		return err
	}
	if err := sameCollection(txn, first, parent); err != nil {
		return err
	}
	if n.Links() == 1 {
		if err := addLinkDir(txn, n.Ino, first, 1); err != nil {
			return err
		}
	}
	if err := addLinkDir(txn, n.Ino, parent, 1); err != nil {
		return err
	}
	n.Nlink = n.Links() + 1
	n.Ctime = time.Now()
	if err := putInode(txn, n); err != nil {
		return err
	}
	if err := s.link(txn, parent, Entry{Name: name, Ino: n.Ino, Kind: n.Kind}); err != nil {
		return err
	}
	return s.touchParentsOf(txn, n)
}

// dropName removes name, in parent, of inode n: the inode with it if it
// was its last name (deleteInode), else one link. It returns n as it is
// left, with Nlink 0 if it is gone.
func (s *Store) dropName(txn *badgerdb.Txn, parent uint64, name string, n *Inode) (*Inode, error) {
	if !n.Linked() {
		gone := *n
		gone.Nlink = 0
		return &gone, s.deleteInode(txn, parent, name, n.Ino)
	}
	if err := s.unlink(txn, parent, name, n.Kind); err != nil {
		return nil, err
	}
	left := *n
	left.Nlink--
	left.Ctime = time.Now()
	if err := s.moveLink(txn, &left, parent, 0); err != nil {
		return nil, err
	}
	if err := putInode(txn, &left); err != nil {
		return nil, err
	}
	return &left, s.touchParentsOf(txn, &left)
}

// moveLink records, in txn, that linked inode n (with its link count as
// it is to be) lost a name in from and, unless to is 0, gained one in to;
// p names a directory that still holds a name of n.
func (s *Store) moveLink(txn *badgerdb.Txn, n *Inode, from, to uint64) error {
	if to != 0 {
		if err := addLinkDir(txn, n.Ino, to, 1); err != nil {
			return err
		}
	}
	if err := addLinkDir(txn, n.Ino, from, -1); err != nil {
		return err
	}
	dirs, err := linkDirs(txn, n.Ino)
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		return fmt.Errorf("inode %d names no directory: %w", n.Ino, errBadRecord)
	}
	if n.Links() == 1 { // one name left: no l keys
		for _, dir := range dirs {
			if err := txn.Delete(linkDirKey(n.Ino, dir)); err != nil {
				return err
			}
		}
	}
	if parent, err := parentOf(txn, n.Ino); err == nil && parent != from {
		return nil
	}
	return txn.Set(inoKey(prefixParent, n.Ino), binary.BigEndian.AppendUint64(nil, dirs[0]))
}

// addLinkDir adds delta to the names of ino that dir holds.
func addLinkDir(txn *badgerdb.Txn, ino, dir uint64, delta int) error {
	key := linkDirKey(ino, dir)
	count := 0
	body, err := getCopy(txn, key, "link directory")
	switch {
	case err == nil && len(body) == 4:
		count = int(binary.BigEndian.Uint32(body))
	case err == nil:
		return fmt.Errorf("names of inode %d in directory %d: %w", ino, dir, errBadRecord)
	case !isNotExist(err):
		return err
	}
	count += delta
	if count <= 0 {
		return txn.Delete(key)
	}
	return txn.Set(key, binary.BigEndian.AppendUint32(nil, uint32(count)))
}

// linkDirs returns the directories holding names of a linked inode (none
// for an inode with one name).
func linkDirs(txn *badgerdb.Txn, ino uint64) ([]uint64, error) {
	prefix := inoKey(prefixLinkDir, ino)
	it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix})
	defer it.Close()
	var dirs []uint64
	for it.Rewind(); it.Valid(); it.Next() {
		key := it.Item().Key()
		if len(key) != len(prefix)+8 {
			return nil, fmt.Errorf("link directory key %x: %w", key, errBadRecord)
		}
		dirs = append(dirs, binary.BigEndian.Uint64(key[len(prefix):]))
	}
	return dirs, nil
}

// touchParentsOf records, in txn, that an attribute of n changed: every
// directory listing it changed.
func (s *Store) touchParentsOf(txn *badgerdb.Txn, n *Inode) error {
	if !n.Linked() {
		return s.touchParentOf(txn, n.Ino)
	}
	dirs, err := linkDirs(txn, n.Ino)
	if err != nil {
		return err
	}
	for _, dir := range dirs {
		if err := s.touchDir(txn, dir); err != nil {
			return err
		}
	}
	return nil
}

// collectionFolder returns the collection folder dir is in: the top of
// its parent chain.
func collectionFolder(txn *badgerdb.Txn, dir uint64) (uint64, error) {
	for depth := 0; depth < 4096; depth++ {
		parent, err := parentOf(txn, dir)
		if isNotExist(err) {
			return dir, nil
		}
		if err != nil {
			return 0, err
		}
		dir = parent
	}
	return 0, fmt.Errorf("directory %d: no collection folder above it: %w", dir, errBadRecord)
}

// sameCollection is nil if directories a and b are in one collection,
// else an EXDEV error: a linked inode lives in one collection.
func sameCollection(txn *badgerdb.Txn, a, b uint64) error {
	if a == b {
		return nil
	}
	fa, err := collectionFolder(txn, a)
	if err != nil {
		return err
	}
	fb, err := collectionFolder(txn, b)
	if err != nil {
		return err
	}
	if fa != fb {
		return fmt.Errorf("a file with several names stays in its collection: %w", syscall.EXDEV)
	}
	return nil
}

// linksStayTogether is nil unless moving directory dir from oldParent to
// newParent takes it into another collection with a name of a linked
// inode inside it while another name stays outside (EXDEV): all the names
// of an inode are in one collection. It reads the whole l table: moving a
// directory between collections is rare.
func (s *Store) linksStayTogether(txn *badgerdb.Txn, dir, oldParent, newParent uint64) error {
	if err := sameCollection(txn, oldParent, newParent); err == nil {
		return nil
	} else if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	inside := map[uint64]bool{}   // directories holding names: in dir's subtree?
	split := map[uint64][2]bool{} // linked inode: a name inside, a name outside
	it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixLinkDir}})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		key := it.Item().Key()
		if len(key) != 17 {
			return fmt.Errorf("link directory key %x: %w", key, errBadRecord)
		}
		ino, holder := binary.BigEndian.Uint64(key[1:9]), binary.BigEndian.Uint64(key[9:])
		in, known := inside[holder]
		if !known {
			in = holder == dir || isAncestor(txn, dir, holder)
			inside[holder] = in
		}
		where := split[ino]
		if in {
			where[0] = true
		} else {
			where[1] = true
		}
		if where[0] && where[1] {
			return fmt.Errorf("a file in it has names outside it, which would be in another collection: %w", syscall.EXDEV)
		}
		split[ino] = where
	}
	return nil
}

// removeOtherNames removes, in txn, every name of linked inode ino but
// name in parent (removed by the caller), and its l keys: a file that
// goes as a whole (Settle removing a file whose content is lost). Each
// directory holding a name is scanned: rare work.
func (s *Store) removeOtherNames(txn *badgerdb.Txn, ino uint64, parent uint64, name string) error {
	dirs, err := linkDirs(txn, ino)
	if err != nil {
		return err
	}
	for _, dir := range dirs {
		prefix := inoKey(prefixEntry, dir)
		var names []string
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			_ = item.Value(func(v []byte) error {
				entry := string(item.Key()[len(prefix):])
				if len(v) == 9 && binary.BigEndian.Uint64(v[:8]) == ino && (dir != parent || entry != name) {
					names = append(names, entry)
				}
				return nil
			})
		}
		it.Close()
		for _, entry := range names {
			if err := s.unlink(txn, dir, entry, KindFile); err != nil { // a linked inode is no directory
				return err
			}
		}
		if err := txn.Delete(linkDirKey(ino, dir)); err != nil {
			return err
		}
	}
	return nil
}
