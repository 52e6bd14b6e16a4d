package badger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

var _ diskaccess.MetadataStore = (*Store)(nil)

func getRecord(txn *badgerdb.Txn, ref blobstore.Ref) (*blobRecord, error) {
	value, err := getCopy(txn, blobKey(ref), "blob "+ref.String())
	if err != nil {
		return nil, err
	}
	return decodeRecord(ref, value)
}

// BlobRecord returns the blob's metadata and its modification time (zero if
// never set), or an fs.ErrNotExist error.
func (s *Store) BlobRecord(ctx context.Context, ref blobstore.Ref) (meta *diskaccess.BlobMeta, mtime int64, err error) {
	var r *blobRecord
	err = s.view(func(txn *badgerdb.Txn) error {
		r, err = getRecord(txn, ref)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	if !r.Mtime.IsZero() {
		mtime = r.Mtime.UnixNano()
	}
	return &r.BlobMeta, mtime, nil
}

// QueryBlobMetadata implements diskaccess.MetadataStore.
func (s *Store) QueryBlobMetadata(ctx context.Context, ref blobstore.Ref, keys diskaccess.KeyRing) (*diskaccess.BlobMeta, error) {
	meta, _, err := s.BlobRecord(ctx, ref)
	if err != nil {
		return nil, err
	}
	if keys != nil {
		if key, err := keys.DataKey(meta.EncryptionKeyId); err == nil {
			meta.EncryptionKey = key
		}
	}
	return meta, nil
}

// QueryBlobCrc32 implements diskaccess.MetadataStore.
func (s *Store) QueryBlobCrc32(ctx context.Context, ref blobstore.Ref) ([]byte, error) {
	meta, _, err := s.BlobRecord(ctx, ref)
	if err != nil {
		return nil, err
	}
	return meta.ExpectedCrc32, nil
}

// QueryBlobExists implements diskaccess.MetadataStore.
func (s *Store) QueryBlobExists(ctx context.Context, ref blobstore.Ref) (bool, error) {
	var found bool
	err := s.view(func(txn *badgerdb.Txn) (err error) {
		found, err = exists(txn, blobKey(ref))
		return err
	})
	return found, err
}

var _ diskaccess.StoredBytesFinder = (*Store)(nil)

// BlobsStoredAs implements diskaccess.StoredBytesFinder: it reads every
// blob record (no index is kept by stored size or checksum), decoding
// each in place.
func (s *Store) BlobsStoredAs(ctx context.Context, sizeOnDisk int64, crc []byte) ([]blobstore.Ref, error) {
	var refs []blobstore.Ref
	err := s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixBlob}, PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			key := it.Item().Key()
			if len(key) != 1+blobstore.RefSize {
				return errBadRecord
			}
			ref := blobstore.Ref(key[1:])
			err := it.Item().Value(func(value []byte) error {
				record, err := decodeRecord(ref, value)
				if err == nil && record.SizeOnDisk == sizeOnDisk && bytes.Equal(record.ExpectedCrc32, crc) {
					refs = append(refs, ref)
				}
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return refs, err
}

// WriteBlobCreated implements diskaccess.MetadataStore. The blob's bytes
// need not be durable yet (stored under blobstore.WithDeferredSync): the
// record is journaled until the next Commit has synced the volume.
func (s *Store) WriteBlobCreated(ctx context.Context, meta *diskaccess.BlobMeta, volumeId int) error {
	return s.update(func(txn *badgerdb.Txn) error {
		return s.recordCreated(txn, meta, volumeId)
	})
}

// recordCreated is WriteBlobCreated's writes, in txn: the record, its
// index mark, its journal entry, and the volume's index and counts.
func (s *Store) recordCreated(txn *badgerdb.Txn, meta *diskaccess.BlobMeta, volumeId int) error {
	if found, err := exists(txn, blobKey(meta.Ref)); err != nil || found {
		if err == nil {
			err = fmt.Errorf("blob %s is already recorded", meta.Ref)
		}
		return err
	}
	record := &blobRecord{BlobMeta: *meta}
	record.EncryptionKey = nil
	record.Volumes = []int{volumeId}
	if err := txn.Set(blobKey(meta.Ref), encodeRecord(record)); err != nil {
		return err
	}
	if err := s.markIndexed(txn, meta.EncryptionKeyId, meta.Ref); err != nil {
		return err
	}
	if err := s.journalBlobCopy(txn, meta.Ref, volumeId); err != nil {
		return err
	}
	if err := reprieve(txn, volumeId, meta.Ref); err != nil {
		return err
	}
	s.notes.note(txn, meta.Ref)
	return addToVolume(txn, volumeId, meta.Ref, meta.SizeOnDisk)
}

// WriteBlobReplicated implements diskaccess.MetadataStore.
func (s *Store) WriteBlobReplicated(ctx context.Context, ref blobstore.Ref, volumeId int) error {
	return s.update(func(txn *badgerdb.Txn) error {
		record, err := getRecord(txn, ref)
		if err != nil {
			return err
		}
		if slices.Contains(record.Volumes, volumeId) {
			return nil
		}
		record.Volumes = append(record.Volumes, volumeId)
		if err := txn.Set(blobKey(ref), encodeRecord(record)); err != nil {
			return err
		}
		if err := reprieve(txn, volumeId, ref); err != nil {
			return err
		}
		return addToVolume(txn, volumeId, ref, record.SizeOnDisk)
	})
}

// SetBlobMtime records a modification time for the blob (set through the
// mount with touch or utimens); unixNano 0 clears it.
func (s *Store) SetBlobMtime(ctx context.Context, ref blobstore.Ref, unixNano int64) error {
	return s.update(func(txn *badgerdb.Txn) error {
		record, err := getRecord(txn, ref)
		if err != nil {
			return err
		}
		record.Mtime = timeFromUnixNano(unixNano)
		if err := s.markIndexed(txn, record.EncryptionKeyId, ref); err != nil {
			return err
		}
		return txn.Set(blobKey(ref), encodeRecord(record))
	})
}

// addToVolume indexes ref under the volume and counts it.
func addToVolume(txn *badgerdb.Txn, volumeID int, ref blobstore.Ref, size int64) error {
	if err := txn.Set(volumeBlobKey(volumeID, ref), nil); err != nil {
		return err
	}
	return addCounts(txn, volumeID, 1, size)
}

// addCounts adds to a volume's blob count and stored bytes.
func addCounts(txn *badgerdb.Txn, volumeID int, blobs, bytes int64) error {
	count, total, err := volumeCounts(txn, volumeID)
	if err != nil {
		return err
	}
	value := binary.BigEndian.AppendUint64(nil, uint64(count+blobs))
	value = binary.BigEndian.AppendUint64(value, uint64(total+bytes))
	return txn.Set(volumeIDKey(prefixVolumeCount, volumeID), value)
}

func volumeCounts(txn *badgerdb.Txn, volumeID int) (count, bytes int64, err error) {
	value, err := getCopy(txn, volumeIDKey(prefixVolumeCount, volumeID), "volume counts")
	if isNotExist(err) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	if len(value) != 16 {
		return 0, 0, fmt.Errorf("volume %d: damaged blob counts", volumeID)
	}
	return int64(binary.BigEndian.Uint64(value[0:8])), int64(binary.BigEndian.Uint64(value[8:16])), nil
}

// ListVolumeBlobs calls fn for every blob the metadata says volumeID holds,
// in ascending ref order, starting after the ref after (zero: from the
// start). It reads keys only, so it streams millions of refs in little
// memory. A listing is one consistent snapshot.
func (s *Store) ListVolumeBlobs(ctx context.Context, volumeID int, after blobstore.Ref, fn func(blobstore.Ref) error) error {
	prefix := volumeIDKey(prefixVolumeBlob, volumeID)
	return s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix})
		defer it.Close()
		start := prefix
		if !after.IsZero() {
			start = append(volumeBlobKey(volumeID, after), 0)
		}
		for it.Seek(start); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			key := it.Item().Key()
			if len(key) != len(prefix)+blobstore.RefSize {
				return fmt.Errorf("volume %d: damaged index key %x", volumeID, key)
			}
			if err := fn(blobstore.Ref(key[len(prefix):])); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListBlobs calls fn for each recorded blob in ref order, starting after
// the given ref (zero: from the start): every blob of the store, once. If
// visible is not nil, only the blobs with a copy on a volume it accepts.
func (s *Store) ListBlobs(ctx context.Context, after blobstore.Ref, visible func(volumeID int) bool, fn func(blobstore.Ref) error) error {
	return s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixBlob}})
		defer it.Close()
		start := []byte{prefixBlob}
		if !after.IsZero() {
			start = append(blobKey(after), 0)
		}
		var use BlobUse
		keyIDs := map[string]string{}
		for it.Seek(start); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			key := it.Item().Key()
			if len(key) != 1+blobstore.RefSize {
				return fmt.Errorf("damaged blob record key %x", key)
			}
			ref := blobstore.Ref(key[1:])
			if visible != nil {
				use = BlobUse{Ref: ref, Volumes: use.Volumes[:0]}
				if err := it.Item().Value(func(value []byte) error { return decodeUse(value, &use, keyIDs) }); err != nil {
					return err
				}
				if !slices.ContainsFunc(use.Volumes, visible) {
					continue
				}
			}
			if err := fn(ref); err != nil {
				return err
			}
		}
		return nil
	})
}

func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist)
}

func timeFromUnixNano(unixNano int64) time.Time {
	if unixNano == 0 {
		return time.Time{}
	}
	return time.Unix(0, unixNano).UTC()
}

// WriteBlobsCreated records many new blobs on volumeId, a few thousand per
// transaction: WriteBlobCreated for bulk imports. Blobs already recorded
// are an error, as for WriteBlobCreated; the batches before stay recorded.
func (s *Store) WriteBlobsCreated(ctx context.Context, metas []*diskaccess.BlobMeta, volumeId int) error {
	const perTxn = 2000 // within memTableSize's bound on a transaction
	for start := 0; start < len(metas); start += perTxn {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch := metas[start:min(start+perTxn, len(metas))]
		err := s.update(func(txn *badgerdb.Txn) error {
			var bytes int64
			for _, meta := range batch {
				if found, err := exists(txn, blobKey(meta.Ref)); err != nil || found {
					if err == nil {
						err = fmt.Errorf("blob %s is already recorded", meta.Ref)
					}
					return err
				}
				record := &blobRecord{BlobMeta: *meta}
				record.EncryptionKey, record.Volumes = nil, []int{volumeId}
				if err := txn.Set(blobKey(meta.Ref), encodeRecord(record)); err != nil {
					return err
				}
				if err := txn.Set(volumeBlobKey(volumeId, meta.Ref), nil); err != nil {
					return err
				}
				if err := s.markIndexed(txn, meta.EncryptionKeyId, meta.Ref); err != nil {
					return err
				}
				if err := reprieve(txn, volumeId, meta.Ref); err != nil {
					return err
				}
				bytes += meta.SizeOnDisk
			}
			return addCounts(txn, volumeId, int64(len(batch)), bytes)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
