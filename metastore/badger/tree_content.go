package badger

import (
	"context"
	"fmt"
	"syscall"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// A file's content commit: the tree's record pointed at a stored blob,
// with the file's content before journaled (journal.go), alone or with
// the record of the blob just stored.

// CommitContent points file ino at a stored blob, atomically, and marks it
// committed; attrs, if not nil, changes other attributes in the same
// transaction (before the content's size and mtime are set). The blob must
// be recorded (WriteBlobCreated) before this is called; it need not be
// durable yet: the file's content before is journaled until the next
// Commit, so that an open after a power loss can put it back (Settle).
func (s *Store) CommitContent(ctx context.Context, ino uint64, ref blobstore.Ref, size, storedSize int64, mtime time.Time, attrs func(*Inode)) (*Inode, error) {
	var n *Inode
	err := s.update(func(txn *badgerdb.Txn) (err error) {
		n, err = s.commitContentIn(txn, ino, ref, size, storedSize, mtime, attrs)
		return err
	})
	return n, err
}

// CommitNewContent is WriteBlobCreated(meta, volumeId) and then
// CommitContent of that blob (meta.Ref, meta.SizeOnDisk) to file ino, in
// one transaction: the same records, index marks, counts and journal
// entries (the blob's written first, so its generation is not newer than
// the content's, as with the two calls). It is for a blob just stored
// (diskaccess.BlobWriter.CommitWith, created), under its ref's lock. If
// it fails nothing is written: a file that is gone is an fs.ErrNotExist
// error, and the blob is then not recorded either.
func (s *Store) CommitNewContent(ctx context.Context, ino uint64, meta *diskaccess.BlobMeta, volumeId int, size int64, mtime time.Time, attrs func(*Inode)) (*Inode, error) {
	var n *Inode
	err := s.update(func(txn *badgerdb.Txn) (err error) {
		if err := s.recordCreated(txn, meta, volumeId); err != nil {
			return err
		}
		n, err = s.commitContentIn(txn, ino, meta.Ref, size, meta.SizeOnDisk, mtime, attrs)
		return err
	})
	return n, err
}

// commitContentIn is CommitContent's writes, in txn; it returns the
// file's new record.
func (s *Store) commitContentIn(txn *badgerdb.Txn, ino uint64, ref blobstore.Ref, size, storedSize int64, mtime time.Time, attrs func(*Inode)) (*Inode, error) {
	n, err := getInode(txn, ino)
	if err != nil {
		return nil, err
	}
	if n.Kind != KindFile {
		return nil, fmt.Errorf("inode %d: %w", ino, syscall.EISDIR)
	}
	if err := s.journalContentOf(txn, n); err != nil {
		return nil, err
	}
	if n.Committed {
		if err := txn.Delete(refUseKey(n.Ref, ino)); err != nil {
			return nil, err
		}
	}
	if err := txn.Set(refUseKey(ref, ino), nil); err != nil {
		return nil, err
	}
	s.notes.note(txn, ref) // a blob stored already may now belong to another collection too
	if attrs != nil {
		attrs(n)
	}
	n.Ref, n.Size, n.StoredSize, n.Committed = ref, size, storedSize, true
	n.Mtime, n.Ctime = mtime, time.Now()
	if err := putInode(txn, n); err != nil {
		return nil, err
	}
	if err := s.touchParentsOf(txn, n); err != nil {
		return nil, err
	}
	if err := txn.Delete(inoKey(prefixUncommitted, ino)); err != nil {
		return nil, err
	}
	return n, nil
}
