// Package diskaccess ties blob metadata to blob storage: it writes blobs to
// volumes (compressed, encrypted and checksummed, in blob format v1, see
// docs/format.md), reads them back verified, scrubs them without keys and
// replicates them byte for byte between volumes.
//
// Its API follows varasto's stodiskaccess package; where varasto trusted
// the disk, this package does not: every frame is authenticated before a
// byte of it is returned, commits are fsync-ordered, memory stays bounded
// for any blob size, and reads can start at any offset.
package diskaccess

import (
	"context"
	"time"

	"github.com/stofuse/stofuse/blobstore"
)

// BlobMeta is what the metadata store records about a blob.
type BlobMeta struct {
	Ref blobstore.Ref
	// RealSize is the plaintext size in bytes.
	RealSize int64
	// SizeOnDisk is the stored size in bytes: framing, compression and
	// encryption included. Every replica has exactly these bytes.
	SizeOnDisk int64
	// IsCompressed is true when at least one frame is stored lz4-compressed.
	IsCompressed bool
	// EncryptionKeyId names the collection data key the blob is sealed with.
	EncryptionKeyId string
	// EncryptionKey is the data key itself. QueryBlobMetadata sets it when
	// the caller's KeyRing holds the key; it is never given to
	// WriteBlobCreated and never stored.
	EncryptionKey []byte
	// ExpectedCrc32 is the CRC-32C (Castagnoli) of the stored bytes, 4 bytes
	// big-endian: what Scrub and Replicate check without a key.
	ExpectedCrc32 []byte
	// Volumes lists the volumes holding a verified copy, in the order the
	// copies were recorded.
	Volumes []int
	// Created is when the blob was first written.
	Created time.Time
}

// KeyRing holds the data keys a caller has unlocked. It is filled once, at
// mount time or at the start of a command, and never stored.
type KeyRing interface {
	// DataKey returns the data key with the given id, or an error if the
	// ring does not hold it.
	DataKey(keyId string) ([]byte, error)
}

// MetadataStore records which blobs exist, how they are stored and on which
// volumes. metastore/badger is the implementation on disk.
type MetadataStore interface {
	// QueryBlobMetadata returns the blob's metadata, or an fs.ErrNotExist
	// error if the blob is unknown. If keys is not nil and holds the
	// blob's data key, EncryptionKey is set; otherwise it is nil.
	QueryBlobMetadata(ctx context.Context, ref blobstore.Ref, keys KeyRing) (*BlobMeta, error)
	// QueryBlobCrc32 returns ExpectedCrc32, or an fs.ErrNotExist error.
	QueryBlobCrc32(ctx context.Context, ref blobstore.Ref) ([]byte, error)
	// QueryBlobExists reports whether any volume holds the blob.
	QueryBlobExists(ctx context.Context, ref blobstore.Ref) (bool, error)
	// QueryCollectionEncryptionKeyForNewBlobs returns the id and the data
	// key that new blobs of the collection are sealed with. An unknown
	// collection is an fs.ErrNotExist error; a key the store cannot unlock
	// is an ErrKeyNotAvailable error.
	QueryCollectionEncryptionKeyForNewBlobs(ctx context.Context, collId string) (keyId string, key []byte, err error)
	// WriteBlobCreated records a new blob, stored on volumeId. It is called
	// once the stored bytes are in place: durable, or, when the store ran
	// under blobstore.WithDeferredSync, durable from the driver's next Sync
	// on. An implementation that may persist the record before that Sync
	// must be able to tell, after a crash, which records to check (badger
	// journals them: docs/format.md, Durability). Recording a blob that is
	// already known is an error: the Controller serializes writers of one
	// ref and asks first.
	WriteBlobCreated(ctx context.Context, meta *BlobMeta, volumeId int) error
	// WriteBlobReplicated records that volumeId now holds a verified copy of
	// a known blob. It is called only after the copy is durable; recording
	// a volume twice keeps one entry.
	WriteBlobReplicated(ctx context.Context, ref blobstore.Ref, volumeId int) error
}

// StoredBytesFinder is what a MetadataStore may also do (found by type
// assertion): find blobs by their stored size and CRC-32C. Scrub uses it
// to name the blob whose bytes a copy holds when they are whole but not
// its own; without it, such a copy is reported as damaged in its header
// or holding another blob's bytes.
type StoredBytesFinder interface {
	// BlobsStoredAs returns the refs of the blobs recorded with stored
	// size sizeOnDisk and CRC-32C crc (ExpectedCrc32): none is an empty
	// result, not an error. It may read every blob record, so it is for
	// the rare copy that is not what it should be, not for every blob.
	BlobsStoredAs(ctx context.Context, sizeOnDisk int64, crc []byte) ([]blobstore.Ref, error)
}
