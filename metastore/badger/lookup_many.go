package badger

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// Many lookups in one transaction, for a listing's READDIRPLUS replies:
// the names of a reply are neighbours in the key space, so one iterator
// walks from one to the next (a Next where a Seek would search every
// level again), where a lookup each would start from the top of the tree.

// seekTo leaves it at key and reports whether it is there. Keys must be
// asked for in ascending order: the iterator moves forwards only, and is
// moved only when it stands before key.
func seekTo(it *badgerdb.Iterator, key []byte) bool {
	if it.Valid() {
		switch c := bytes.Compare(it.Item().Key(), key); {
		case c == 0:
			return true
		case c > 0:
			return false // past it: not there
		}
		it.Next() // the usual case: key is the next one
		if it.Valid() && bytes.Compare(it.Item().Key(), key) >= 0 {
			return bytes.Equal(it.Item().Key(), key)
		}
	}
	it.Seek(key)
	return it.Valid() && bytes.Equal(it.Item().Key(), key)
}

// BlobRecords is BlobRecord of each of refs, which must be in ascending
// order, in one transaction: fn is called, in that order, with the index
// of each ref that has a record and the record's metadata and
// modification time (0 if never set).
func (s *Store) BlobRecords(ctx context.Context, refs []blobstore.Ref, fn func(i int, meta *diskaccess.BlobMeta, mtime int64)) error {
	return s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixBlob}})
		defer it.Close()
		key := make([]byte, 1+blobstore.RefSize)
		key[0] = prefixBlob
		for i, ref := range refs {
			if err := ctx.Err(); err != nil {
				return err
			}
			copy(key[1:], ref[:])
			if !seekTo(it, key) {
				continue
			}
			var r *blobRecord
			if err := it.Item().Value(func(v []byte) (err error) {
				r, err = decodeRecord(ref, v)
				return err
			}); err != nil {
				return err
			}
			var mtime int64
			if !r.Mtime.IsZero() {
				mtime = r.Mtime.UnixNano()
			}
			fn(i, &r.BlobMeta, mtime)
		}
		return nil
	})
}

// LookupMany is Lookup of each of names in directory parent, which must
// be in ascending order, in one transaction: fn is called with the index
// of each name that is there and its inode, in the order of the inode
// numbers. A name whose inode is missing (damage) is left out, as one
// that is not there: Lookup of it says what is wrong.
func (s *Store) LookupMany(ctx context.Context, parent uint64, names []string, fn func(i int, n *Inode)) error {
	type found struct {
		i   int
		ino uint64
	}
	there := make([]found, 0, len(names))
	return s.view(func(txn *badgerdb.Txn) error {
		entries := txn.NewIterator(badgerdb.IteratorOptions{Prefix: inoKey(prefixEntry, parent)})
		defer entries.Close()
		var key []byte
		for i, name := range names {
			if err := ctx.Err(); err != nil {
				return err
			}
			key = append(binary.BigEndian.AppendUint64(append(key[:0], prefixEntry), parent), name...)
			if !seekTo(entries, key) {
				continue
			}
			var ino uint64
			if err := entries.Item().Value(func(v []byte) error {
				if len(v) != 9 {
					return fmt.Errorf("entry %q in directory %d: %w", name, parent, errBadRecord)
				}
				ino = binary.BigEndian.Uint64(v[:8])
				return nil
			}); err != nil {
				return err
			}
			there = append(there, found{i, ino})
		}
		// A directory's entries were mostly made one after another: in
		// the order of their numbers, the inodes are neighbours too.
		slices.SortFunc(there, func(a, b found) int { return cmp.Compare(a.ino, b.ino) })
		inodes := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixInode}})
		defer inodes.Close()
		for _, f := range there {
			key = binary.BigEndian.AppendUint64(append(key[:0], prefixInode), f.ino)
			if !seekTo(inodes, key) {
				continue // damaged: Lookup of the name says so
			}
			var n *Inode
			if err := inodes.Item().Value(func(v []byte) (err error) {
				n, err = decodeInode(f.ino, v)
				return err
			}); err != nil {
				return err
			}
			fn(f.i, n)
		}
		return nil
	})
}
