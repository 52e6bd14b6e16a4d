package badger

import (
	"bytes"
	"context"
	"fmt"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/stofuse/stofuse/blobstore"
)

// BlobUse is what the metadata says of one blob for a garbage collection:
// where it is, how old, and what of the metadata's own keeps it.
type BlobUse struct {
	Ref        blobstore.Ref
	SizeOnDisk int64
	Volumes    []int
	Created    time.Time
	KeyID      string // the data key it is sealed with: its collection's
	Explicit   bool   // stored explicitly and not released (explicit.go)
	Files      bool   // a file of the files/ tree uses it
}

// useChunk is how many blob records EachBlobUse reads in one read
// transaction (a var for the tests).
var useChunk = 4096

// EachBlobUse calls fn for every blob record, in ascending ref order. It
// reads them in chunks of useChunk, each from a read transaction of its
// own that ends before fn hears of them, walking the records and the
// index of the files' blobs (r <ref> <ino>) side by side: so it holds one
// chunk at a time whatever the number of blobs, and keeps no read open
// while fn writes (a garbage collection condemns as it goes). A read held
// open over the whole stream would make Badger keep every transaction
// committed meanwhile, for its conflict checks (the fingerprints of the
// keys each wrote: about 160 KiB for each 1,024 blobs condemned, 80 MiB
// for half a million). Each record is seen with its files as one view
// shows both; a record written or removed during the stream (by fn or
// anyone) is seen or not depending on whether its chunk was read before.
// The BlobUse (its Volumes) is fn's only until fn returns.
func (s *Store) EachBlobUse(ctx context.Context, fn func(BlobUse) error) error {
	var chunk []BlobUse
	var volumes []int // chunk's Volumes, reused from chunk to chunk
	var after *blobstore.Ref
	keyIDs := map[string]string{}
	for {
		var err error
		chunk, volumes, err = s.readUses(ctx, after, chunk[:0], volumes[:0], keyIDs)
		if err != nil {
			return err
		}
		for _, use := range chunk {
			if err := fn(use); err != nil {
				return err
			}
		}
		if len(chunk) < useChunk {
			return nil
		}
		last := chunk[len(chunk)-1].Ref
		after = &last
	}
}

// readUses appends to chunk the uses of up to useChunk blob records, the
// first after ref after (nil: from the first), in one read transaction,
// with their Volumes appended to volumes; keyIDs interns their key ids.
func (s *Store) readUses(ctx context.Context, after *blobstore.Ref, chunk []BlobUse, volumes []int, keyIDs map[string]string) ([]BlobUse, []int, error) {
	err := s.view(func(txn *badgerdb.Txn) error {
		records := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixBlob}, PrefetchValues: true, PrefetchSize: 256})
		defer records.Close()
		uses := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixRefUse}})
		defer uses.Close()
		if after == nil {
			records.Rewind()
			uses.Rewind()
		} else {
			records.Seek(blobKey(*after))
			if records.Valid() && bytes.Equal(records.Item().Key()[1:], after[:]) {
				records.Next()
			}
			uses.Seek(append([]byte{prefixRefUse}, after[:]...))
		}
		for ; records.Valid() && len(chunk) < useChunk; records.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			key := records.Item().Key()
			if len(key) != 1+blobstore.RefSize {
				return errBadRecord
			}
			first := len(volumes)
			use := BlobUse{Ref: blobstore.Ref(key[1:]), Volumes: volumes}
			err := records.Item().Value(func(value []byte) error { return decodeUse(value, &use, keyIDs) })
			if err != nil {
				return err
			}
			volumes = use.Volumes
			use.Volumes = volumes[first:len(volumes):len(volumes)]
			// Skip the uses of refs before this one (files whose blob has no
			// record: a settle's business, not a collection's).
			for uses.Valid() && bytes.Compare(uses.Item().Key()[1:], use.Ref[:]) < 0 {
				uses.Next()
			}
			use.Files = uses.Valid() && bytes.HasPrefix(uses.Item().Key()[1:], use.Ref[:])
			chunk = append(chunk, use)
		}
		return nil
	})
	return chunk, volumes, err
}

// decodeUse reads from a blob record's value (record.go's layout) what a
// collection needs, into use, reusing use.Volumes; keyIDs interns the key
// ids, which are few.
func decodeUse(b []byte, use *BlobUse, keyIDs map[string]string) error {
	if len(b) < 2 || b[0] != recordVersion {
		return fmt.Errorf("blob %s: %w", use.Ref, errBadRecord)
	}
	flags := b[1]
	d := &recordDecoder{b: b[2:]}
	d.uvarint() // plaintext size
	use.SizeOnDisk = int64(d.uvarint())
	d.bytes(4) // CRC-32C
	use.Created = time.Unix(0, d.varint()).UTC()
	if flags&flagMtime != 0 {
		d.varint()
	}
	use.Explicit = flags&flagExplicit != 0
	keyID := d.bytes(d.uvarint())
	if d.err == nil {
		var ok bool
		if use.KeyID, ok = keyIDs[string(keyID)]; !ok {
			use.KeyID = string(keyID)
			keyIDs[use.KeyID] = use.KeyID
		}
	}
	count := d.uvarint()
	if count > uint64(len(d.b)) {
		d.err = errBadRecord
	}
	for i := uint64(0); i < count && d.err == nil; i++ {
		use.Volumes = append(use.Volumes, int(d.uvarint()))
	}
	if d.err != nil || len(d.b) != 0 {
		return fmt.Errorf("blob %s: %w", use.Ref, errBadRecord)
	}
	return nil
}

// CachedTrees calls fn with the tree ref of every directory whose tree the
// last snapshot cached (t <dir>): trees the next snapshot reuses without
// storing them again, so a collection must keep them.
func (s *Store) CachedTrees(ctx context.Context, fn func(blobstore.Ref) error) error {
	return s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixTreeCache}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			value, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if len(value) != 8+blobstore.RefSize {
				return errBadRecord
			}
			if err := fn(blobstore.Ref(value[8:])); err != nil {
				return err
			}
		}
		return nil
	})
}
