package diskaccess

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/stofuse/stofuse/blobstore"
)

// Replicate copies blob ref from volume fromVolumeId to toVolumeId as stored
// bytes, without decrypting. The bytes are checked against the metadata's
// size and CRC-32C on the way: a damaged source stores nothing and records
// nothing (a *CorruptBlobError). The copy is recorded only once it is
// durable. A target that already holds the blob is left alone. A
// ReadLimiter in ctx (WithReadLimiter) paces the reads.
func (c *Controller) Replicate(ctx context.Context, fromVolumeId int, toVolumeId int, ref blobstore.Ref) error {
	unlock := c.refLocks.lock(ref)
	defer unlock()
	meta, err := c.metadataStore.QueryBlobMetadata(ctx, ref, nil)
	if err != nil {
		return err
	}
	return c.replicateLocked(ctx, meta, fromVolumeId, toVolumeId)
}

// replicateLocked is Replicate for a caller holding the ref's lock.
func (c *Controller) replicateLocked(ctx context.Context, meta *BlobMeta, from, to int) error {
	if !slices.Contains(meta.Volumes, from) {
		return &NotOnVolumeError{Ref: meta.Ref, Volume: from, Volumes: meta.Volumes}
	}
	if slices.Contains(meta.Volumes, to) {
		return nil
	}
	source, err := c.driver(from)
	if err != nil {
		return err
	}
	target, err := c.driver(to)
	if err != nil {
		return err
	}
	rc, err := source.RawFetch(ctx, meta.Ref)
	if isNotExist(err) {
		return missingError(meta.Ref, from)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	err = target.RawStore(ctx, meta.Ref, newCRCReader(limited(ctx, rc), meta.ExpectedCrc32, meta.SizeOnDisk))
	if errors.Is(err, errChecksum) {
		return c.locateDamage(ctx, source, meta.Ref, from, err)
	}
	if err != nil {
		return fmt.Errorf("replicating blob %s to volume %d: %w", meta.Ref, to, err)
	}
	return c.metadataStore.WriteBlobReplicated(ctx, meta.Ref, to)
}
