package diskaccess

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/stofuse/stofuse/blobstore"
)

// Fetch returns the plaintext of blob ref as stored on volumeId, verified
// frame by frame: decrypt(optional_decompress(stored)). A frame that fails
// authentication makes Read return a *CorruptBlobError before any of its
// bytes. A blob that is unknown, or not on volumeId, is an fs.ErrNotExist
// error; a data key missing from keys is ErrKeyNotAvailable.
func (c *Controller) Fetch(ctx context.Context, ref blobstore.Ref, keys KeyRing, volumeId int) (io.ReadCloser, error) {
	blob, err := c.OpenBlob(ctx, ref, keys, volumeId)
	if err != nil {
		return nil, err
	}
	blob.cache = nil // a stream reads each frame once: caching would only evict
	return blob.Stream(0), nil
}

// OpenBlob opens blob ref on volumeId for reads at any offset (see
// BlobReader). It reads the blob's header, index and footer, and checks
// them against the metadata; frames are read when they are asked for.
// It reads that copy only: damage in it is an error (OpenBlobAnyCopy
// reads around it).
func (c *Controller) OpenBlob(ctx context.Context, ref blobstore.Ref, keys KeyRing, volumeId int) (*BlobReader, error) {
	meta, err := c.metadataStore.QueryBlobMetadata(ctx, ref, keys)
	if err != nil {
		return nil, err
	}
	return c.openBlob(ctx, meta, volumeId)
}

// openBlob is OpenBlob of a blob whose metadata (with its key) is meta.
func (c *Controller) openBlob(ctx context.Context, meta *BlobMeta, volumeId int) (*BlobReader, error) {
	ref := meta.Ref
	if !slices.Contains(meta.Volumes, volumeId) {
		return nil, &NotOnVolumeError{Ref: ref, Volume: volumeId, Volumes: meta.Volumes}
	}
	driver, err := c.driver(volumeId)
	if err != nil {
		return nil, err
	}
	if meta.EncryptionKey == nil {
		return nil, fmt.Errorf("blob %s needs key %s: %w", ref, meta.EncryptionKeyId, ErrKeyNotAvailable)
	}
	blob, err := c.openCopy(ctx, meta, driver, volumeId)
	if err != nil {
		return nil, err
	}
	blob.cache = c.frameCache
	props := driver.Properties()
	if props.ReadAhead > 0 {
		blob.readAhead = props.ReadAhead
	}
	if props.PreferStream {
		// A Stream reads the blob in one request rather than one per frame.
		streamCtx := context.WithoutCancel(ctx)
		blob.rawStream = func() (io.ReadCloser, error) { return driver.RawFetch(streamCtx, ref) }
	}
	return blob, nil
}

// openCopy opens the copy of a blob on volumeId (whose driver is given)
// and checks its layout against meta.
func (c *Controller) openCopy(ctx context.Context, meta *BlobMeta, driver blobstore.Driver, volumeId int) (*BlobReader, error) {
	ref := meta.Ref
	src, err := rawOpen(ctx, driver, ref, volumeId)
	if err != nil {
		return nil, err
	}
	if src.Size() != meta.SizeOnDisk {
		src.Close()
		return nil, &CorruptBlobError{Ref: ref, Volume: volumeId, Region: RegionWhole, Frame: -1,
			Err: fmt.Errorf("stored size is %d bytes, the metadata says %d", src.Size(), meta.SizeOnDisk)}
	}
	blob, err := openBlobReader(ref, volumeId, src, meta.EncryptionKey)
	if err != nil {
		src.Close()
		return nil, err
	}
	if blob.Size() != meta.RealSize {
		blob.Close()
		return nil, &CorruptBlobError{Ref: ref, Volume: volumeId, Region: RegionFooter, Frame: -1,
			Err: fmt.Errorf("footer gives %d plaintext bytes, the metadata says %d", blob.Size(), meta.RealSize)}
	}
	return blob, nil
}
