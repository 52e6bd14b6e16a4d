package diskaccess

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/stofuse/stofuse/blobstore"
)

// Scrub checks blob ref on volumeId without any key: the stored bytes must
// match the CRC-32C and size in the metadata. It returns the number of
// bytes checked. A ReadLimiter in ctx (WithReadLimiter) paces the reads. Damage is a *CorruptBlobError naming the ref and, where the
// format allows, the frame; a blob the volume has lost is one wrapping
// ErrMissing.
func (c *Controller) Scrub(ctx context.Context, ref blobstore.Ref, volumeId int) (int64, error) {
	meta, driver, err := c.blobOnVolume(ctx, ref, nil, volumeId)
	if err != nil {
		return 0, err
	}
	return c.checkStored(ctx, meta, driver, volumeId)
}

// checkStored is Scrub of a blob whose metadata and volume driver the
// caller has: Repair checks its target with it.
func (c *Controller) checkStored(ctx context.Context, meta *BlobMeta, driver blobstore.Driver, volumeId int) (int64, error) {
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
		return checked, c.locateDamage(ctx, driver, meta.Ref, volumeId, err)
	}
	return checked, err
}

// locateDamage finds which part of a blob that failed its checksum is
// damaged: the layout, one frame (by the frame checksums in the index), or,
// if all of those check out, the header.
func (c *Controller) locateDamage(ctx context.Context, driver blobstore.Driver, ref blobstore.Ref, volumeId int, cause error) error {
	src, err := rawOpen(ctx, driver, ref, volumeId)
	if err != nil {
		return err
	}
	defer src.Close()
	meta, err := c.metadataStore.QueryBlobMetadata(ctx, ref, nil)
	if err != nil {
		return err
	}
	if src.Size() != meta.SizeOnDisk {
		// Checked before parsing, which allocates in proportion to the size.
		return &CorruptBlobError{Ref: ref, Volume: volumeId, Region: RegionWhole, Frame: -1,
			Err: fmt.Errorf("stored size is %d bytes, the metadata says %d", src.Size(), meta.SizeOnDisk)}
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
	return &CorruptBlobError{Ref: ref, Volume: volumeId, Region: RegionHeader, Frame: -1,
		Err: fmt.Errorf("%w; frames and index match their own checksums, so the damage is in the header", cause)}
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
