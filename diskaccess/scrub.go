package diskaccess

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/stofuse/stofuse/blobstore"
)

// Scrub checks blob ref on volumeId without any key: the stored bytes must
// match the CRC-32C and size in the metadata. It returns the number of
// bytes checked. A ReadLimiter in ctx (WithReadLimiter) paces the reads.
// Damage is a *CorruptBlobError naming the ref and, where the format
// allows, the frame; a blob the volume has lost is one wrapping
// ErrMissing. A copy that holds another blob's bytes wraps an
// *OtherBlobError naming that blob when the metadata store can find it
// (StoredBytesFinder).
func (c *Controller) Scrub(ctx context.Context, ref blobstore.Ref, volumeId int) (int64, error) {
	return c.ScrubWithKeys(ctx, ref, volumeId, nil)
}

// ScrubWithKeys is Scrub, with the caller's keys to confirm that a copy
// holding another blob's bytes holds that blob's (OtherBlobError.Confirmed).
func (c *Controller) ScrubWithKeys(ctx context.Context, ref blobstore.Ref, volumeId int, keys KeyRing) (int64, error) {
	meta, driver, err := c.blobOnVolume(ctx, ref, nil, volumeId)
	if err != nil {
		return 0, err
	}
	return c.checkStored(ctx, meta, driver, volumeId, keys)
}

// checkStored is Scrub of a blob whose metadata and volume driver the
// caller has: Repair checks its target with it.
func (c *Controller) checkStored(ctx context.Context, meta *BlobMeta, driver blobstore.Driver, volumeId int, keys KeyRing) (int64, error) {
	rc, err := driver.RawFetch(ctx, meta.Ref)
	if isNotExist(err) {
		return 0, missingError(meta.Ref, volumeId)
	}
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	checker := newCRCReader(limited(ctx, rc), meta.ExpectedCrc32, meta.SizeOnDisk)
	checked, err := io.Copy(io.Discard, blobstore.ContextReader(ctx, checker))
	if errors.Is(err, errChecksum) {
		return checked, c.locateDamage(ctx, suspect{driver, meta, volumeId, checker.crc, err}, keys)
	}
	return checked, err
}

// suspect is a copy whose stored bytes failed the metadata's checksum.
type suspect struct {
	driver blobstore.Driver
	meta   *BlobMeta
	volume int
	crc    uint32 // of its stored bytes, as read
	cause  error  // how they failed
}

// locateDamage finds which part of a blob that failed its checksum is
// damaged: the layout, or one frame (by the frame checksums in the index).
// If all of those check out, the bytes are whole: another blob's, if the
// metadata names one (whoseBytes), else the header is damaged (or they
// are a blob's the metadata does not know).
func (c *Controller) locateDamage(ctx context.Context, s suspect, keys KeyRing) error {
	ref, volumeId := s.meta.Ref, s.volume
	src, err := rawOpen(ctx, s.driver, ref, volumeId)
	if err != nil {
		return err
	}
	defer src.Close()
	if src.Size() != s.meta.SizeOnDisk {
		// Checked before parsing, which allocates in proportion to the size.
		return &CorruptBlobError{Ref: ref, Volume: volumeId, Region: RegionWhole, Frame: -1,
			Err: fmt.Errorf("stored size is %d bytes, the metadata says %d", src.Size(), s.meta.SizeOnDisk)}
	}
	l, err := parseLayout(src, src.Size())
	if err != nil {
		return asCorrupt(err, ref, volumeId)
	}
	buf := make([]byte, l.frameSize()+tagSize)
	for i, f := range l.frames {
		if err := ctx.Err(); err != nil {
			return err
		}
		stored := buf[:f.storedLen]
		if err := readFull(src, stored, f.offset); err != nil {
			return err
		}
		if crc32.Checksum(stored, castagnoli) != f.crc {
			return &CorruptBlobError{Ref: ref, Volume: volumeId, Region: RegionFrame, Frame: i,
				Err: errors.New("stored bytes do not match the frame checksum")}
		}
	}
	if other := c.whoseBytes(ctx, src, s, keys); other != nil {
		return &CorruptBlobError{Ref: ref, Volume: volumeId, Region: RegionWhole, Frame: -1, Err: other}
	}
	unknown := "another blob's"
	if _, ok := c.metadataStore.(StoredBytesFinder); ok {
		unknown = "the bytes of a blob this store does not record"
	}
	return &CorruptBlobError{Ref: ref, Volume: volumeId, Region: RegionHeader, Frame: -1,
		Err: fmt.Errorf("%w; frames and index match their own checksums, so the header is damaged, or they are %s", s.cause, unknown)}
}

// whoseBytes names the blob whose bytes a whole copy holds instead of its
// own: the one other blob recorded with their stored size and CRC-32C,
// or, with keys, the one of those whose key opens their first frame as
// its own (that settles a CRC-32C collision too). nil: none is known.
func (c *Controller) whoseBytes(ctx context.Context, src blobstore.RawReaderAt, s suspect, keys KeyRing) *OtherBlobError {
	finder, ok := c.metadataStore.(StoredBytesFinder)
	if !ok {
		return nil
	}
	crc := crcBytes(s.crc)
	refs, err := finder.BlobsStoredAs(ctx, src.Size(), crc)
	if err != nil {
		return nil
	}
	refs = slices.DeleteFunc(refs, func(r blobstore.Ref) bool { return r == s.meta.Ref })
	var unconfirmed []blobstore.Ref
	for _, other := range refs {
		switch c.opensAs(ctx, src, other, keys) {
		case opensAsIt:
			return &OtherBlobError{Blob: other, CRC: crc, Want: s.meta.ExpectedCrc32, Confirmed: true}
		case noKeyFor:
			unconfirmed = append(unconfirmed, other)
		}
	}
	if len(unconfirmed) != 1 {
		return nil // none, or a CRC-32C shared by several: cannot tell which
	}
	return &OtherBlobError{Blob: unconfirmed[0], CRC: crc, Want: s.meta.ExpectedCrc32}
}

// opening is what a key says about whose stored bytes a copy holds.
type opening int

const (
	noKeyFor   opening = iota // the blob's key is not at hand
	opensAsIt                 // the first frame opens as the blob's
	notOpening                // it does not: they are not the blob's
)

// opensAs tries to open the first frame of the stored bytes in src as
// blob ref's, with its key from keys.
func (c *Controller) opensAs(ctx context.Context, src blobstore.RawReaderAt, ref blobstore.Ref, keys KeyRing) opening {
	if keys == nil {
		return noKeyFor
	}
	meta, err := c.metadataStore.QueryBlobMetadata(ctx, ref, keys)
	if err != nil || meta.EncryptionKey == nil {
		return noKeyFor
	}
	blob, err := openBlobReader(ref, 0, nopCloser{src}, meta.EncryptionKey)
	if err != nil {
		return notOpening
	}
	bufs := getFrameBuffers(blob.layout.frameShift)
	defer putFrameBuffers(blob.layout.frameShift, bufs)
	if _, err := blob.openOwnFrame(0, bufs); err != nil {
		return notOpening
	}
	return opensAsIt
}

var errChecksum = errors.New("stored bytes do not match the checksum in the metadata")

// crcReader passes stored bytes through and, at their end, checks their
// size and CRC-32C: it returns an errChecksum error instead of io.EOF when
// they do not match, so that a driver storing from it stores nothing.
type crcReader struct {
	r        io.Reader
	want     []byte
	wantSize int64
	crc      uint32
	size     int64
}

func newCRCReader(r io.Reader, want []byte, wantSize int64) *crcReader {
	return &crcReader{r: r, want: want, wantSize: wantSize}
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc = crc32.Update(c.crc, castagnoli, p[:n])
	c.size += int64(n)
	if err == io.EOF {
		if c.size != c.wantSize {
			return n, fmt.Errorf("%w: %d bytes stored, %d expected", errChecksum, c.size, c.wantSize)
		}
		if got := crcBytes(c.crc); string(got) != string(c.want) {
			return n, fmt.Errorf("%w: CRC-32C %x, expected %x", errChecksum, got, c.want)
		}
	}
	return n, err
}
