package diskaccess

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/stofuse/stofuse/blobstore"
)

// WriteBlob stores content as blob ref on volumeId, sealed with the key of
// collection collId, after checking that content hashes to ref. On a
// mismatch it returns an ErrRefMismatch error, and nothing is stored or
// recorded.
//
// Writing a blob the volume already has reads and checks content and
// writes nothing. A blob known on other volumes is copied from one of them
// (Replicate) rather than sealed again, so that every copy has the same
// bytes. Concurrent writers of one ref store it once.
//
// maybeCompressible=false skips compression (for data known not to shrink).
func (c *Controller) WriteBlob(ctx context.Context, volumeId int, collId string, ref blobstore.Ref, content io.Reader, maybeCompressible bool) error {
	return c.writeBlob(ctx, volumeId, collId, ref, content, maybeCompressible, true)
}

// WriteBlobNoVerify is WriteBlob for a caller that has already checked that
// content hashes to ref (for example while receiving it). The ref is still
// bound to the stored frames, but content is not hashed again.
func (c *Controller) WriteBlobNoVerify(ctx context.Context, volumeId int, collId string, ref blobstore.Ref, content io.Reader, maybeCompressible bool) error {
	return c.writeBlob(ctx, volumeId, collId, ref, content, maybeCompressible, false)
}

func (c *Controller) writeBlob(ctx context.Context, volumeId int, collId string, ref blobstore.Ref, content io.Reader, compress, verify bool) error {
	driver, err := c.driver(volumeId)
	if err != nil {
		return err
	}
	unlock := c.refLocks.lock(ref)
	defer unlock()

	meta, err := c.metadataStore.QueryBlobMetadata(ctx, ref, nil)
	switch {
	case err == nil:
		return c.writeKnownBlob(ctx, meta, volumeId, content, verify)
	case !isNotExist(err):
		return err
	}
	keyId, key, err := c.metadataStore.QueryCollectionEncryptionKeyForNewBlobs(ctx, collId)
	if err != nil {
		return fmt.Errorf("collection %q: %w", collId, err)
	}
	var salt [saltSize]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return err
	}
	sealer, err := newSealer(ref, key, salt, c.frameShift, content, compress, verify)
	if err != nil {
		return err
	}
	if err := driver.RawStore(ctx, ref, sealer); err != nil {
		return fmt.Errorf("writing blob %s to volume %d: %w", ref, volumeId, err)
	}
	if !sealer.done {
		return fmt.Errorf("writing blob %s to volume %d: the driver stopped reading before the end", ref, volumeId)
	}
	return c.metadataStore.WriteBlobCreated(ctx, newBlobMeta(ref, keyId, sealer.Result(), c.now()), volumeId)
}

func newBlobMeta(ref blobstore.Ref, keyId string, r sealResult, created time.Time) *BlobMeta {
	return &BlobMeta{
		Ref:             ref,
		RealSize:        r.plainSize,
		SizeOnDisk:      r.storedSize,
		IsCompressed:    r.isCompressed,
		EncryptionKeyId: keyId,
		ExpectedCrc32:   crcBytes(r.crc),
		Created:         created,
	}
}

// writeKnownBlob handles WriteBlob of a blob the metadata already has: the
// content is still checked, so that a wrong content never looks stored.
func (c *Controller) writeKnownBlob(ctx context.Context, meta *BlobMeta, volumeId int, content io.Reader, verify bool) error {
	if verify {
		if err := checkContent(meta.Ref, content); err != nil {
			return err
		}
	}
	if slices.Contains(meta.Volumes, volumeId) {
		return nil
	}
	from, err := c.BestVolumeId(meta.Volumes)
	if err != nil {
		return fmt.Errorf("blob %s is stored on volumes %v, none of them mounted, so it cannot be copied to volume %d: %w",
			meta.Ref, meta.Volumes, volumeId, err)
	}
	return c.replicateLocked(ctx, meta, from, volumeId)
}

func checkContent(ref blobstore.Ref, content io.Reader) error {
	h := sha256.New()
	if _, err := io.Copy(h, content); err != nil {
		return err
	}
	var got blobstore.Ref
	h.Sum(got[:0])
	if got != ref {
		return fmt.Errorf("%w: content hashes to %s, not %s", ErrRefMismatch, got, ref)
	}
	return nil
}

func crcBytes(crc uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, crc)
}
