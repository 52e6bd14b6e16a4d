package diskaccess

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/stofuse/stofuse/blobstore"
)

// ErrCopyIntact: Repair found the target's copy verifying, so it left it
// as it was (a good copy is never overwritten).
var ErrCopyIntact = errors.New("the copy verifies: left as it was")

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
	if err := c.copyVerified(ctx, meta, from, to); err != nil {
		return err
	}
	return c.metadataStore.WriteBlobReplicated(ctx, meta.Ref, to)
}

// Repair replaces the damaged or missing copy of blob ref on volume
// toVolumeId (which the metadata lists as holding it) with the stored
// bytes of the copy on fromVolumeId, without decrypting. The target's copy
// is checked again first, under the ref's lock: if it verifies now, Repair
// returns ErrCopyIntact and writes nothing. The source's bytes are checked
// against the metadata's size and CRC-32C on the way: a damaged or missing
// source (a *CorruptBlobError naming fromVolumeId) leaves the target's copy
// as it was, since the driver stores nothing from a reader that fails. The
// new copy is durable before Repair returns nil. A target the metadata does
// not list is a *NotOnVolumeError (Replicate is for that). Calling it again
// after success returns ErrCopyIntact.
func (c *Controller) Repair(ctx context.Context, fromVolumeId int, toVolumeId int, ref blobstore.Ref) error {
	unlock := c.refLocks.lock(ref)
	defer unlock()
	meta, target, err := c.blobOnVolume(ctx, ref, nil, toVolumeId)
	if err != nil {
		return err
	}
	if fromVolumeId == toVolumeId {
		return fmt.Errorf("repair of blob %s on volume %d from itself", ref, toVolumeId)
	}
	if !slices.Contains(meta.Volumes, fromVolumeId) {
		return &NotOnVolumeError{Ref: ref, Volume: fromVolumeId, Volumes: meta.Volumes}
	}
	_, err = c.checkStored(ctx, meta, target, toVolumeId, nil)
	if err == nil {
		return ErrCopyIntact
	}
	if !errors.Is(err, ErrCorrupt) {
		return err // could not tell whether it is damaged: leave it
	}
	if err := c.copyVerified(ctx, meta, fromVolumeId, toVolumeId); err != nil {
		return err
	}
	// Already recorded; written again (idempotent) so that the volume's
	// index and counts hold it whatever happened to them before.
	return c.metadataStore.WriteBlobReplicated(ctx, ref, toVolumeId)
}

// copyVerified stores the source's bytes of a blob on the target, checked
// on the way against the metadata's size and CRC-32C; it replaces any copy
// there. A source that does not check out stores nothing and is named in a
// *CorruptBlobError. When it returns nil the copy is durable.
func (c *Controller) copyVerified(ctx context.Context, meta *BlobMeta, from, to int) error {
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
		return &CopyError{Ref: meta.Ref, Volume: from, Source: true, Err: err}
	}
	defer rc.Close()
	read := &readErrors{r: limited(ctx, rc)}
	checker := newCRCReader(read, meta.ExpectedCrc32, meta.SizeOnDisk)
	err = target.RawStore(ctx, meta.Ref, checker)
	switch {
	case errors.Is(err, errChecksum):
		return c.locateDamage(ctx, suspect{source, meta, from, checker.crc, err}, nil)
	case err != nil && read.err != nil && ctx.Err() == nil:
		return &CopyError{Ref: meta.Ref, Volume: from, Source: true, Err: read.err}
	case err != nil:
		return &CopyError{Ref: meta.Ref, Volume: to, Err: err}
	}
	if blobstore.SyncDeferred(ctx) {
		// The copy is recorded next: it must be durable first.
		if err := target.Sync(ctx); err != nil {
			return &CopyError{Ref: meta.Ref, Volume: to, Err: err}
		}
	}
	return nil
}

// readErrors keeps the first error other than EOF that reading r gave, so
// that a store that fails can be told from a source that did.
type readErrors struct {
	r   io.Reader
	err error
}

func (e *readErrors) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}
