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
// created, or its mtime set, marks it (x <key id length> <key id> <ref>
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
	Mtime time.Time
	stamp uint64 // of the mark it was read under; 0 when read without one
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
			if err := fn(IndexedBlob{BlobMeta: record.BlobMeta, Mtime: record.Mtime, stamp: binary.BigEndian.Uint64(stamp)}); err != nil {
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
			if err := fn(IndexedBlob{BlobMeta: record.BlobMeta, Mtime: record.Mtime}); err != nil {
				return err
			}
		}
		return nil
	})
}

// ClearIndexChanges removes the marks of blobs an index now holds, unless
// the record changed again since it was read (its mark has a new stamp).
// Blobs read by AllIndexed clear their marks whatever the stamp.
func (s *Store) ClearIndexChanges(ctx context.Context, keyID string, indexed []IndexedBlob) error {
	const perTxn = 2000
	for start := 0; start < len(indexed); start += perTxn {
		batch := indexed[start:min(start+perTxn, len(indexed))]
		err := s.update(func(txn *badgerdb.Txn) error {
			for _, b := range batch {
				key := indexMarkKey(keyID, b.Ref)
				if b.stamp != 0 {
					value, err := getCopy(txn, key, "index mark")
					if err != nil || len(value) != 8 || binary.BigEndian.Uint64(value) != b.stamp {
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
