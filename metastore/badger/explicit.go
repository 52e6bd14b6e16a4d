package badger

import (
	"context"
	"fmt"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// Explicit stores. A blob stored explicitly (stofuse put, a write into
// ref/, also one that found the blob stored already) is kept by a garbage
// collection until it is released, whatever else uses it; the tree blobs
// of snapshots and the content of files/ are not explicit stores. The mark
// is a flag of the blob record (flagExplicit), so it is written in the
// record's transaction and goes with it (settling an unclean stop removes
// a record whose blob was lost, mark and all), and a change of it marks
// the record for the collection's next blob index, which carries it to
// the volume for a recovery.

// RecordExplicitStore records that the blob meta.Ref was stored
// explicitly, for diskaccess.BlobWriter.CommitWith: with created, the new
// blob's record (as WriteBlobCreated: journaled, counted on volumeId) and
// its mark in one transaction; else the mark on the recorded blob. Marking
// a marked blob again changes nothing. promoted reports that a blob
// recorded before, and not an explicit store, became one: the blob index
// on the volumes says otherwise of it until the next snapshot writes it.
func (s *Store) RecordExplicitStore(ctx context.Context, meta *diskaccess.BlobMeta, volumeId int, created bool) (promoted bool, err error) {
	err = s.update(func(txn *badgerdb.Txn) error {
		if created {
			if err := s.recordCreated(txn, meta, volumeId); err != nil {
				return err
			}
		}
		changed, err := s.setExplicit(txn, meta.Ref, true)
		promoted = changed && !created
		return err
	})
	return promoted, err
}

// MarkExplicit marks the recorded blob ref as stored explicitly; a blob
// not recorded is an fs.ErrNotExist error. It may be called any number of
// times. It returns the blob's metadata when this call promoted it (it
// was not an explicit store), else nil.
func (s *Store) MarkExplicit(ctx context.Context, ref blobstore.Ref) (promoted *diskaccess.BlobMeta, err error) {
	err = s.update(func(txn *badgerdb.Txn) error {
		promoted = nil
		changed, err := s.setExplicit(txn, ref, true)
		if changed {
			record, err := getRecord(txn, ref)
			if err != nil {
				return err
			}
			promoted = &record.BlobMeta
		}
		return err
	})
	return promoted, err
}

// ReleaseExplicit clears blob ref's explicit store and reports whether it
// had one; a blob not recorded is an fs.ErrNotExist error. Releasing a
// released blob changes nothing.
func (s *Store) ReleaseExplicit(ctx context.Context, ref blobstore.Ref) (bool, error) {
	var released bool
	err := s.update(func(txn *badgerdb.Txn) (err error) {
		released, err = s.setExplicit(txn, ref, false)
		return err
	})
	return released, err
}

// IsExplicit reports whether blob ref is an explicit store not released;
// a blob not recorded is an fs.ErrNotExist error.
func (s *Store) IsExplicit(ctx context.Context, ref blobstore.Ref) (bool, error) {
	var explicit bool
	err := s.view(func(txn *badgerdb.Txn) error {
		r, err := getRecord(txn, ref)
		if err == nil {
			explicit = r.Explicit
		}
		return err
	})
	return explicit, err
}

// MarkExplicitBlobs marks many recorded blobs as explicit stores, a few
// thousand per transaction (a recovery's); the batches before a failure
// stay marked.
func (s *Store) MarkExplicitBlobs(ctx context.Context, refs []blobstore.Ref) error {
	const perTxn = 2000
	for start := 0; start < len(refs); start += perTxn {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch := refs[start:min(start+perTxn, len(refs))]
		err := s.update(func(txn *badgerdb.Txn) error {
			for _, ref := range batch {
				if _, err := s.setExplicit(txn, ref, true); err != nil {
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

// setExplicit sets or clears ref's mark in txn, and reports whether that
// changed it; a change marks the record for the blob index.
func (s *Store) setExplicit(txn *badgerdb.Txn, ref blobstore.Ref, explicit bool) (bool, error) {
	record, err := getRecord(txn, ref)
	if err != nil || record.Explicit == explicit {
		return false, err
	}
	record.Explicit = explicit
	if err := s.markIndexed(txn, record.EncryptionKeyId, ref); err != nil {
		return false, err
	}
	return true, txn.Set(blobKey(ref), encodeRecord(record))
}

// explicitStoresVersion is the setting "explicit-stores": the store's
// records say which blobs are explicit stores.
const explicitStoresVersion = 1

// migrateExplicitStores marks every blob of a store made before explicit
// stores were kept as one: there is no telling which were put and which
// are files' content or snapshot trees, and a blob kept too long is a
// smaller harm than a blob lost (stofuse release frees them). A new store
// has no blob, and only gets the setting. It runs when the store is
// opened, before anything else writes; the marks are durable before the
// setting that says they are there, so a migration cut short runs again.
func (s *Store) migrateExplicitStores() error {
	var version int
	err := s.view(func(txn *badgerdb.Txn) error {
		return getJSON(txn, stringKey(prefixSetting, "explicit-stores"), "explicit stores", &version)
	})
	if err == nil && version >= explicitStoresVersion {
		return nil
	}
	if err != nil && !isNotExist(err) {
		return err
	}
	batch := s.db.NewWriteBatch()
	defer batch.Cancel()
	marked := 0
	err = s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixBlob}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			ref := blobstore.Ref(it.Item().Key()[1:])
			value, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			record, err := decodeRecord(ref, value)
			if err != nil {
				return err
			}
			if !record.Explicit {
				record.Explicit = true
				marked++
				if err := batch.Set(blobKey(ref), encodeRecord(record)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err == nil {
		err = batch.Flush()
	}
	if err == nil && marked > 0 {
		err = s.syncDB()
	}
	if err != nil {
		return fmt.Errorf("marking the blobs of a store made before explicit stores were kept: %w", err)
	}
	return s.updateDurable(func(txn *badgerdb.Txn) error {
		return putJSON(txn, stringKey(prefixSetting, "explicit-stores"), explicitStoresVersion)
	})
}
