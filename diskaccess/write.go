package diskaccess

import (
	"context"
	"encoding/binary"
	"io"
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
	w, err := c.NewBlobWriter(ctx, volumeId, collId, ref, WriteOptions{MaybeCompressible: compress, ContentVerified: !verify})
	if err != nil {
		return err
	}
	if _, err := w.ReadFrom(content); err != nil {
		w.Abort()
		return err
	}
	_, err = w.Commit(ctx)
	return err
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

func crcBytes(crc uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, crc)
}
