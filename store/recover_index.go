package store

import (
	"context"
	"fmt"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/metastore/snapshot"
)

// recoveredIndex is what the volume's blob indexes say about its blobs:
// with it, recovery checks a blob's stored bytes against the checksum
// recorded before the loss, without a key, and knows which key it is
// sealed with; without it (a blob written after the last snapshot),
// recovery finds the key by trying them (diskaccess.Recognize).
type recoveredIndex struct {
	records map[blobstore.Ref]indexedRecord
	// chains are the heads and lengths found, by collection.
	chains map[string]indexChain
}

type indexedRecord struct {
	record snapshot.BlobRecord
	keyID  string
}

type indexChain struct {
	head   blobstore.Ref
	length int
}

// readIndexes reads, for each collection, the blob index named by its
// newest snapshot whose record and index segments are intact. The record
// and segment blobs are themselves verified with the collection's key and
// recorded. A damaged index is no loss: its blobs are recognized the slow
// way, and warned about.
func (s *Store) readIndexes(ctx context.Context, driver blobstore.Driver, volumeID int, keys *badger.KeyExport, r Reporter) (*recoveredIndex, error) {
	idx := &recoveredIndex{records: map[blobstore.Ref]indexedRecord{}, chains: map[string]indexChain{}}
	for _, c := range keys.Collections {
		dek, err := s.meta.Ring().DataKey(c.KeyID)
		if err != nil {
			return nil, err
		}
		key := []diskaccess.DataKey{{ID: c.KeyID, Key: dek}}
		all, err := s.Snapshots(ctx, c.Name, volumeID)
		if err != nil {
			return nil, err
		}
		for i := len(all) - 1; i >= 0; i-- {
			chain, records, err := s.readIndex(ctx, driver, volumeID, &all[i], key)
			if err != nil {
				r.Warn(fmt.Sprintf("the blob index of snapshot %s of %s cannot be used (%v): its blobs are checked with the keys instead", all[i].Name, c.Name, err))
				continue
			}
			for _, rec := range records {
				if _, newer := idx.records[rec.Ref]; !newer {
					idx.records[rec.Ref] = indexedRecord{record: rec, keyID: c.KeyID}
				}
			}
			idx.chains[c.Name] = chain
			break
		}
	}
	return idx, nil
}

// readIndex reads one snapshot's record and its index chain, newest
// segment first; of the records of one ref, the newest is kept.
func (s *Store) readIndex(ctx context.Context, driver blobstore.Driver, volumeID int, info *SnapshotInfo, key []diskaccess.DataKey) (indexChain, []snapshot.BlobRecord, error) {
	if err := s.recognizeOne(ctx, driver, volumeID, info.Record, key); err != nil {
		return indexChain{}, nil, err
	}
	rec, err := s.Record(ctx, info)
	if err != nil {
		return indexChain{}, nil, err
	}
	chain := indexChain{head: rec.Index}
	var records []snapshot.BlobRecord
	seen := map[blobstore.Ref]bool{}
	for ref := rec.Index; !ref.IsZero(); chain.length++ {
		if chain.length > 4*maxIndexChain {
			return indexChain{}, nil, fmt.Errorf("an index chain of more than %d segments", 4*maxIndexChain)
		}
		if err := s.recognizeOne(ctx, driver, volumeID, ref, key); err != nil {
			return indexChain{}, nil, err
		}
		body, err := s.LoadTree(ctx, ref)
		if err != nil {
			return indexChain{}, nil, err
		}
		seg, err := snapshot.DecodeSegment(body)
		if err != nil {
			return indexChain{}, nil, fmt.Errorf("index segment %s: %w", ref, err)
		}
		for _, r := range seg.Records {
			if !seg.ExplicitKnown {
				// Written before explicit stores were kept: it may have
				// been one, so it is kept as one.
				r.Explicit = true
			}
			if !seen[r.Ref] {
				seen[r.Ref] = true
				records = append(records, r)
			}
		}
		ref = seg.Parent
	}
	return chain, records, nil
}

// recognizeOne verifies one blob with key and records it, unless it is
// recorded already.
func (s *Store) recognizeOne(ctx context.Context, driver blobstore.Driver, volumeID int, ref blobstore.Ref, key []diskaccess.DataKey) error {
	if ok, err := s.meta.QueryBlobExists(ctx, ref); err != nil || ok {
		return err
	}
	info, err := driver.Stat(ctx, ref)
	if err != nil {
		return err
	}
	meta, err := diskaccess.Recognize(ctx, driver, ref, key, info.ModTime.UTC())
	if err != nil {
		return err
	}
	return s.meta.WriteBlobsCreated(ctx, []*diskaccess.BlobMeta{meta}, volumeID)
}

// metaOf is the metadata an index records for a blob.
func (r indexedRecord) metaOf() *diskaccess.BlobMeta {
	return &diskaccess.BlobMeta{Ref: r.record.Ref, RealSize: r.record.Size, SizeOnDisk: r.record.StoredSize,
		IsCompressed: r.record.Compressed, EncryptionKeyId: r.keyID, ExpectedCrc32: append([]byte(nil), r.record.CRC32C[:]...),
		Created: r.record.Created}
}
