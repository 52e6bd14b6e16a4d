package diskaccess

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/stofuse/stofuse/blobstore"
)

// layout is what can be learned about a stored blob without its key: the
// header, the footer and the frame index, each checked for consistency.
type layout struct {
	header     [headerSize]byte
	frameShift uint8
	plainSize  int64
	storedSize int64
	frames     []frameEntry
}

// frameEntry locates one stored frame.
type frameEntry struct {
	offset    int64
	storedLen uint32
	crc       uint32 // CRC-32C of the stored frame
	flags     byte
}

func (l *layout) indexOffset() int64 {
	return l.storedSize - footerSize - int64(len(l.frames))*indexEntrySize
}

// framePlainSize is the plaintext size of frame i.
func (l *layout) framePlainSize(i int) int64 {
	return framePlainSize(int64(i), int64(len(l.frames)), l.plainSize, l.frameShift)
}

func (l *layout) frameSize() int64 { return 1 << l.frameShift }

// layoutError is a corruption found while parsing, before the ref and the
// volume are known; the caller turns it into a *CorruptBlobError.
type layoutError struct {
	region Region
	err    error
}

func (e *layoutError) Error() string { return fmt.Sprintf("%s: %v", e.region, e.err) }

func badLayout(region Region, format string, args ...any) error {
	return &layoutError{region: region, err: fmt.Errorf(format, args...)}
}

// asCorrupt turns a layoutError into a CorruptBlobError for ref; other
// errors (I/O) are returned as they are.
func asCorrupt(err error, ref blobstore.Ref, volume int) error {
	var le *layoutError
	if errors.As(err, &le) {
		return &CorruptBlobError{Ref: ref, Volume: volume, Region: le.region, Frame: -1, Err: le.err}
	}
	return err
}

// minStoredSize is the size of the smallest valid blob: an empty one.
const minStoredSize = headerSize + tagSize + indexEntrySize + footerSize

// parseLayout reads and checks the header, footer and index of a stored
// blob of storedSize bytes. It allocates in proportion to storedSize only,
// whatever the bytes claim, so it is safe on arbitrary input.
func parseLayout(src io.ReaderAt, storedSize int64) (*layout, error) {
	if storedSize < minStoredSize {
		return nil, badLayout(RegionWhole, "%d bytes, shorter than the smallest blob (%d)", storedSize, minStoredSize)
	}
	l := &layout{storedSize: storedSize}
	if err := readFull(src, l.header[:], 0); err != nil {
		return nil, err
	}
	if err := l.checkHeader(); err != nil {
		return nil, err
	}
	var footer [footerSize]byte
	if err := readFull(src, footer[:], storedSize-footerSize); err != nil {
		return nil, err
	}
	count, err := l.checkFooter(footer)
	if err != nil {
		return nil, err
	}
	index := make([]byte, count*indexEntrySize)
	if err := readFull(src, index, storedSize-footerSize-int64(len(index))); err != nil {
		return nil, err
	}
	sum := crc32.Update(crc32.Checksum(index, castagnoli), castagnoli, footer[0:8])
	if sum != binary.LittleEndian.Uint32(footer[8:12]) {
		return nil, badLayout(RegionIndex, "index checksum mismatch")
	}
	if err := l.parseIndex(index); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *layout) checkHeader() error {
	h := l.header
	if !bytes.Equal(h[0:7], headerMagic[:]) {
		return badLayout(RegionHeader, "not a stofuse blob (magic %q)", h[0:7])
	}
	if h[7] != formatVersion {
		return badLayout(RegionHeader, "format version %d, this build reads version %d", h[7], formatVersion)
	}
	if h[8] < minFrameShift || h[8] > maxFrameShift {
		return badLayout(RegionHeader, "frame size 2^%d out of range", h[8])
	}
	if !allZero(h[9:16]) {
		return badLayout(RegionHeader, "reserved bytes are not zero")
	}
	l.frameShift = h[8]
	return nil
}

// checkFooter checks the footer and returns the frame count it implies.
func (l *layout) checkFooter(footer [footerSize]byte) (int64, error) {
	if !bytes.Equal(footer[12:16], footerMagic[:]) {
		return 0, badLayout(RegionFooter, "no footer magic: truncated, appended to, or not a blob")
	}
	plainSize := binary.LittleEndian.Uint64(footer[0:8])
	if plainSize > maxPlainSize {
		return 0, badLayout(RegionFooter, "plaintext size %d out of range", plainSize)
	}
	l.plainSize = int64(plainSize)
	count := frameCount(l.plainSize, l.frameShift)
	// Every frame takes at least a tag and an index entry.
	if count > (l.storedSize-headerSize-footerSize)/(tagSize+indexEntrySize) {
		return 0, badLayout(RegionFooter, "%d frames cannot fit in %d bytes", count, l.storedSize)
	}
	return count, nil
}

func (l *layout) parseIndex(index []byte) error {
	count := len(index) / indexEntrySize
	l.frames = make([]frameEntry, count)
	offset := int64(headerSize)
	for i := range l.frames {
		entry := index[i*indexEntrySize : (i+1)*indexEntrySize]
		f := frameEntry{
			offset:    offset,
			storedLen: binary.LittleEndian.Uint32(entry[0:4]),
			crc:       binary.LittleEndian.Uint32(entry[4:8]),
			flags:     entry[8],
		}
		if err := l.checkEntry(i, f); err != nil {
			return err
		}
		l.frames[i] = f
		offset += int64(f.storedLen)
	}
	if offset != l.indexOffset() {
		return badLayout(RegionIndex, "frames end at %d, index starts at %d", offset, l.indexOffset())
	}
	return nil
}

// checkEntry checks that a frame's stored length fits its plaintext size:
// exact when stored plain, strictly smaller (but not empty) when compressed.
func (l *layout) checkEntry(i int, f frameEntry) error {
	plain := l.framePlainSize(i)
	payload := int64(f.storedLen) - tagSize
	switch {
	case f.flags&^flagLZ4 != 0:
		return badLayout(RegionIndex, "frame %d has unknown flags %#x", i, f.flags)
	case f.flags&flagLZ4 == 0 && payload != plain:
		return badLayout(RegionIndex, "frame %d stores %d bytes for %d plaintext bytes", i, payload, plain)
	case f.flags&flagLZ4 != 0 && (payload < 1 || payload >= plain):
		return badLayout(RegionIndex, "compressed frame %d stores %d bytes for %d plaintext bytes", i, payload, plain)
	}
	return nil
}

func readFull(src io.ReaderAt, buf []byte, offset int64) error {
	n, err := src.ReadAt(buf, offset)
	if n == len(buf) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
