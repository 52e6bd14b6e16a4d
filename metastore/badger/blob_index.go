package badger

import (
	"context"
	"encoding/binary"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// The blob index a snapshot writes to the volume (metastore/snapshot,
// index.go) holds what changed since the one before: a blob record
// created, its mtime set, or its explicit store set or released, marks it (x <key id length> <key id> <ref>
// -> the stamp of the change, written blind), and the snapshot of the
// collection whose key seals it clears the marks it wrote.

func indexMarkKey(keyID string, ref blobstore.Ref) []byte {
	b := append([]byte{prefixIndexMark, byte(len(keyID))}, keyID...)
	return append(b, ref[:]...)
}

func indexMarkPrefix(keyID string) []byte {
	return append([]byte{prefixIndexMark, byte(len(keyID))}, keyID...)
}

// markIndexed records, in txn, that ref's record changed.
func (s *Store) markIndexed(txn *badgerdb.Txn, keyID string, ref blobstore.Ref) error {
	return txn.Set(indexMarkKey(keyID, ref), binary.BigEndian.AppendUint64(nil, s.nextStamp()))
}

// IndexedBlob is a blob record as the index keeps it.
type IndexedBlob struct {
	diskaccess.BlobMeta
	Mtime    time.Time
	Explicit bool // stored explicitly, not released (explicit.go)
	// Mark is the change mark it was read under (IndexChanges); its
	// Stamp is 0 when read without one (AllIndexed).
	Mark IndexMark
}

// IndexMark names a change to a blob's record, for ClearIndexChanges.
// Stamp 0 clears the blob's mark whatever its stamp.
type IndexMark struct {
	Ref   blobstore.Ref
	Stamp uint64
}

// IndexChanges calls fn for each blob sealed with keyID whose record
// changed since the marks were last cleared (ClearIndexChanges).
func (s *Store) IndexChanges(ctx context.Context, keyID string, fn func(IndexedBlob) error) error {
	prefix := indexMarkPrefix(keyID)
	return s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			ref := blobstore.Ref(it.Item().Key()[len(prefix):])
			stamp, err := it.Item().ValueCopy(nil)
			if err != nil || len(stamp) != 8 {
				return errBadRecord
			}
			record, err := getRecord(txn, ref)
			if isNotExist(err) {
				continue // gone since (a future gc): nothing to index
			}
			if err != nil {
				return err
			}
			mark := IndexMark{Ref: ref, Stamp: binary.BigEndian.Uint64(stamp)}
			if err := fn(IndexedBlob{BlobMeta: record.BlobMeta, Mtime: record.Mtime, Explicit: record.Explicit, Mark: mark}); err != nil {
				return err
			}
		}
		return nil
	})
}

// AllIndexed calls fn for every blob sealed with keyID: what a full index
// holds.
func (s *Store) AllIndexed(ctx context.Context, keyID string, fn func(IndexedBlob) error) error {
	return s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixBlob}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			ref := blobstore.Ref(it.Item().Key()[1:])
			value, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			record, err := decodeRecord(ref, value)
			if err != nil {
				return err
			}
			if record.EncryptionKeyId != keyID {
				continue
			}
			if err := fn(IndexedBlob{BlobMeta: record.BlobMeta, Mtime: record.Mtime, Explicit: record.Explicit, Mark: IndexMark{Ref: ref}}); err != nil {
				return err
			}
		}
		return nil
	})
}

// ClearIndexChanges removes the marks of blobs an index now holds, unless
// the record changed again since it was read (its mark has a new stamp);
// a mark of Stamp 0 is removed whatever the stamp.
func (s *Store) ClearIndexChanges(ctx context.Context, keyID string, marks []IndexMark) error {
	const perTxn = 2000
	for start := 0; start < len(marks); start += perTxn {
		batch := marks[start:min(start+perTxn, len(marks))]
		err := s.update(func(txn *badgerdb.Txn) error {
			for _, m := range batch {
				key := indexMarkKey(keyID, m.Ref)
				if m.Stamp != 0 {
					value, err := getCopy(txn, key, "index mark")
					if err != nil || len(value) != 8 || binary.BigEndian.Uint64(value) != m.Stamp {
						continue
					}
				}
				if err := txn.Delete(key); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
