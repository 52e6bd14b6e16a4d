package diskaccess

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/stofuse/stofuse/blobstore"
)

// DataKey is a collection data key with its id, for Recognize.
type DataKey struct {
	ID  string
	Key []byte
}

// ErrNoKeyOpens: none of the keys given to Recognize opens the blob.
var ErrNoKeyOpens = errors.New("none of the store's keys opens it")

// inMemoryBelow is the stored size under which Recognize reads a blob
// once, into memory; larger blobs are read twice (checksum, then frames).
const inMemoryBelow = 8 << 20

// Recognize rebuilds, from the bytes alone, the metadata of a blob found
// on a volume whose metadata is lost (recovery): it finds the key among
// keys that opens the blob's first frame, authenticates every frame,
// checks that the plaintext hashes to ref, and takes the CRC-32C of the
// stored bytes, so that no checksum is ever derived from bytes nobody has
// checked. created is recorded as the blob's creation time. A blob that
// fails any check is a *CorruptBlobError, or ErrNoKeyOpens.
func Recognize(ctx context.Context, driver blobstore.Driver, ref blobstore.Ref, keys []DataKey, created time.Time) (*BlobMeta, error) {
	src, crc, err := openForRecognition(ctx, driver, ref)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	blob, keyID, err := openWithSomeKey(ref, src, keys)
	if err != nil {
		return nil, err
	}
	compressed, err := checkPlaintext(ctx, blob)
	if err != nil {
		return nil, err
	}
	return &BlobMeta{Ref: ref, RealSize: blob.Size(), SizeOnDisk: src.Size(), IsCompressed: compressed,
		EncryptionKeyId: keyID, ExpectedCrc32: crcBytes(crc), Created: created}, nil
}

// openForRecognition opens the stored blob for reads at any offset and
// returns the CRC-32C of all its bytes.
func openForRecognition(ctx context.Context, driver blobstore.Driver, ref blobstore.Ref) (blobstore.RawReaderAt, uint32, error) {
	info, err := driver.Stat(ctx, ref)
	if err != nil {
		return nil, 0, err
	}
	raw, err := driver.RawFetch(ctx, ref)
	if err != nil {
		return nil, 0, err
	}
	defer raw.Close()
	if info.Size < inMemoryBelow {
		body, err := io.ReadAll(io.LimitReader(raw, inMemoryBelow))
		if err != nil {
			return nil, 0, err
		}
		return &bytesRaw{bytes.NewReader(body)}, crc32.Checksum(body, castagnoli), nil
	}
	h := crc32.New(castagnoli)
	if _, err := io.Copy(h, raw); err != nil {
		return nil, 0, err
	}
	var src blobstore.RawReaderAt
	if ra, ok := driver.(blobstore.RandomAccessDriver); ok {
		src, err = ra.RawOpen(ctx, ref)
	} else {
		src, err = blobstore.SequentialReaderAt(ctx, driver, ref)
	}
	if err == nil && src.Size() != info.Size {
		src.Close()
		err = fmt.Errorf("blob %s changed while it was read", ref)
	}
	return src, h.Sum32(), err
}

type bytesRaw struct{ *bytes.Reader }

func (b *bytesRaw) Close() error { return nil }

// openWithSomeKey returns the blob opened with the key that opens its
// first frame, and that key's id.
func openWithSomeKey(ref blobstore.Ref, src blobstore.RawReaderAt, keys []DataKey) (*BlobReader, string, error) {
	for _, key := range keys {
		blob, err := openBlobReader(ref, 0, nopCloser{src}, key.Key)
		if err != nil {
			return nil, "", err // the layout itself is damaged: no key helps
		}
		if _, err := blob.openFrame(0, getFrameBuffers(blob.layout.frameShift)); err == nil {
			return blob, key.ID, nil
		}
	}
	return nil, "", &CorruptBlobError{Ref: ref, Region: RegionFrame, Frame: 0, Err: ErrNoKeyOpens}
}

// checkPlaintext authenticates every frame, checks the plaintext hashes
// to the blob's ref, and reports whether any frame is compressed.
func checkPlaintext(ctx context.Context, blob *BlobReader) (bool, error) {
	h := sha256.New()
	buf := make([]byte, 1<<blob.layout.frameShift)
	for off := int64(0); off < blob.Size(); {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		n, err := blob.ReadAt(buf, off)
		h.Write(buf[:n])
		off += int64(n)
		if err != nil && !(errors.Is(err, io.EOF) && off == blob.Size()) {
			return false, err
		}
	}
	if got := blobstore.Ref(h.Sum(nil)); got != blob.ref {
		return false, &CorruptBlobError{Ref: blob.ref, Region: RegionWhole, Frame: -1,
			Err: fmt.Errorf("authentic content hashes to %s, not to its name", got)}
	}
	compressed := false
	for _, f := range blob.layout.frames {
		compressed = compressed || f.flags&flagLZ4 != 0
	}
	return compressed, nil
}

// nopCloser keeps a BlobReader from closing the source it shares.
type nopCloser struct{ blobstore.RawReaderAt }

func (nopCloser) Close() error { return nil }

// CheckStored checks, without a key, that the bytes stored under meta.Ref
// have the size and CRC-32C that meta records: recovery with a blob index
// recorded before the loss. Damage is a *CorruptBlobError; a blob the
// volume does not hold is an fs.ErrNotExist error.
func CheckStored(ctx context.Context, driver blobstore.Driver, meta *BlobMeta) error {
	rc, err := driver.RawFetch(ctx, meta.Ref)
	if err != nil {
		return err
	}
	defer rc.Close()
	checker := newCRCReader(limited(ctx, rc), meta.ExpectedCrc32, meta.SizeOnDisk)
	_, err = io.Copy(io.Discard, blobstore.ContextReader(ctx, checker))
	if errors.Is(err, errChecksum) {
		return &CorruptBlobError{Ref: meta.Ref, Region: RegionWhole, Frame: -1, Err: err}
	}
	return err
}
