package badger

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/stofuse/stofuse/metastore"
)

// Extended attributes of tree inodes (the user.* names; the mount answers
// the others itself):
//
//	a <ino u64 BE> <name>  the attribute's value
//
// An inode with any has flag bit 2 in its record (HasXattrs), so that a
// snapshot, a listing or a getxattr of an inode without any reads no key.
// Hard links share them: they are the inode's.

// Xattr is metastore.Xattr.
type Xattr = metastore.Xattr

func xattrKey(ino uint64, name string) []byte {
	return append(inoKey(prefixXattr, ino), name...)
}

// xattrsOf returns the extended attributes of inode ino in name order.
func xattrsOf(txn *badgerdb.Txn, ino uint64) ([]Xattr, error) {
	prefix := inoKey(prefixXattr, ino)
	it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix, PrefetchValues: true})
	defer it.Close()
	var xattrs []Xattr
	for it.Rewind(); it.Valid(); it.Next() {
		value, err := it.Item().ValueCopy(nil)
		if err != nil {
			return nil, err
		}
		xattrs = append(xattrs, Xattr{Name: string(it.Item().Key()[len(prefix):]), Value: value})
	}
	return xattrs, nil
}

// Xattrs returns the extended attributes of inode ino, in name order.
func (s *Store) Xattrs(ctx context.Context, ino uint64) ([]Xattr, error) {
	var xattrs []Xattr
	err := s.view(func(txn *badgerdb.Txn) error {
		n, err := getInode(txn, ino)
		if err != nil || !n.HasXattrs {
			return err
		}
		xattrs, err = xattrsOf(txn, ino)
		return err
	})
	return xattrs, err
}

// SetXattr sets extended attribute name of inode ino to value, as
// setxattr(2) does with flags (metastore.XattrCreate, XattrReplace: EEXIST,
// ENODATA). Only user.* names are kept (ENOTSUP); all of an inode's
// attributes together are at most metastore.MaxXattrsSize (ENOSPC). The
// inode is returned with its ctime set.
func (s *Store) SetXattr(ctx context.Context, ino uint64, name string, value []byte, flags uint32) (*Inode, error) {
	if err := checkXattrName(name); err != nil {
		return nil, err
	}
	return s.changeXattrs(ino, func(txn *badgerdb.Txn, xattrs []Xattr) (int, error) {
		size := len(name) + len(value)
		found := false
		for _, x := range xattrs {
			if x.Name == name {
				found = true
			} else {
				size += len(x.Name) + len(x.Value)
			}
		}
		switch {
		case found && flags&metastore.XattrCreate != 0:
			return 0, fmt.Errorf("attribute %s: %w", name, fs.ErrExist)
		case !found && flags&metastore.XattrReplace != 0:
			return 0, fmt.Errorf("attribute %s: %w", name, syscall.ENODATA)
		case size > metastore.MaxXattrsSize:
			return 0, fmt.Errorf("attributes of %d bytes, more than %d: %w", size, metastore.MaxXattrsSize, syscall.ENOSPC)
		}
		count := len(xattrs)
		if !found {
			count++
		}
		return count, txn.Set(xattrKey(ino, name), value)
	})
}

// RemoveXattr removes extended attribute name of inode ino (ENODATA if it
// has none of that name), and returns the inode with its ctime set.
func (s *Store) RemoveXattr(ctx context.Context, ino uint64, name string) (*Inode, error) {
	if err := checkXattrName(name); err != nil {
		return nil, err
	}
	return s.changeXattrs(ino, func(txn *badgerdb.Txn, xattrs []Xattr) (int, error) {
		for _, x := range xattrs {
			if x.Name == name {
				return len(xattrs) - 1, txn.Delete(xattrKey(ino, name))
			}
		}
		return 0, fmt.Errorf("attribute %s: %w", name, syscall.ENODATA)
	})
}

// changeXattrs runs change, which returns how many attributes the inode
// is left with, in one transaction with the inode's new record.
func (s *Store) changeXattrs(ino uint64, change func(*badgerdb.Txn, []Xattr) (int, error)) (*Inode, error) {
	var changed *Inode
	err := s.update(func(txn *badgerdb.Txn) error {
		n, err := getInode(txn, ino)
		if err != nil {
			return err
		}
		var xattrs []Xattr
		if n.HasXattrs {
			if xattrs, err = xattrsOf(txn, ino); err != nil {
				return err
			}
		}
		count, err := change(txn, xattrs)
		if err != nil {
			return err
		}
		n.HasXattrs = count > 0
		n.Ctime = time.Now()
		if err := putInode(txn, n); err != nil {
			return err
		}
		changed = n
		return s.touchParentsOf(txn, n)
	})
	return changed, err
}

func checkXattrName(name string) error {
	if !strings.HasPrefix(name, "user.") || len(name) == len("user.") {
		return fmt.Errorf("attribute %q: only user.* attributes are kept: %w", name, syscall.ENOTSUP)
	}
	if len(name) > metastore.MaxXattrName {
		return fmt.Errorf("attribute name of %d bytes: %w", len(name), syscall.ERANGE)
	}
	return nil
}

// deleteXattrs deletes, in txn, the extended attributes of n (which is
// going).
func deleteXattrs(txn *badgerdb.Txn, n *Inode) error {
	if !n.HasXattrs {
		return nil
	}
	xattrs, err := xattrsOf(txn, n.Ino)
	if err != nil {
		return err
	}
	for _, x := range xattrs {
		if err := txn.Delete(xattrKey(n.Ino, x.Name)); err != nil {
			return err
		}
	}
	return nil
}

// Xattrs returns inode n's extended attributes as the view sees them.
func (v *TreeView) Xattrs(n *Inode) ([]Xattr, error) {
	if !n.HasXattrs {
		return nil, nil
	}
	return xattrsOf(v.txn, n.Ino)
}
