package diskaccess

import (
	"crypto/cipher"
	"encoding/binary"
	"hash/crc32"
	"io"

	"github.com/pierrec/lz4/v4"

	"github.com/stofuse/stofuse/blobstore"
)

// sealResult is what sealing learned about a blob, for its metadata.
type sealResult struct {
	plainSize    int64
	storedSize   int64
	crc          uint32 // CRC-32C of all stored bytes
	isCompressed bool
}

// frameSealer writes a blob's stored bytes to out as its plaintext comes,
// frame by frame: each frame as it is handed over, the header with the
// first one, and the index and footer with the last one, so that a blob
// of one frame (most files) reaches out in one Write. The caller cuts the
// frames and says which is the last (the last may be empty or full). Not
// safe for concurrent use.
type frameSealer struct {
	ref      blobstore.Ref
	aead     cipher.AEAD
	compress bool
	out      io.Writer
	bufs     *sealBuffers

	header  []byte // the header, until it goes out with the first frame
	index   []byte // index entries so far
	counter int64  // frames sealed
	crc     uint32
	result  sealResult
}

// sealBuffers are what sealing a frame needs besides the frame: pooled by
// the Controller, since a blob of one small frame would otherwise allocate
// three frame-sized buffers and a compressor.
type sealBuffers struct {
	compressor lz4.Compressor
	packed     []byte // compressed frame, before sealing
	sealed     []byte // what goes out with a frame: the header (first), the sealed frame, the trailer (last)
}

// sealedRoom is what sealBuffers.sealed holds besides a sealed frame: the
// header, and a trailer of a few frames (a longer one grows the buffer).
const sealedRoom = headerSize + 16*indexEntrySize + footerSize

func newSealBuffers(frameSize int) *sealBuffers {
	return &sealBuffers{packed: make([]byte, frameSize), sealed: make([]byte, 0, frameSize+tagSize+sealedRoom)}
}

// newFrameSealer returns the sealer of a blob's frames; the header goes
// out with the first.
func newFrameSealer(ref blobstore.Ref, dataKey []byte, salt [saltSize]byte, frameShift uint8,
	bufs *sealBuffers, compress bool, out io.Writer) (*frameSealer, error) {
	header := encodeHeader(frameShift, salt)
	aead, err := newFrameAEAD(dataKey, header)
	if err != nil {
		return nil, err
	}
	return &frameSealer{ref: ref, aead: aead, compress: compress, out: out, bufs: bufs, header: header[:]}, nil
}

// emit writes stored bytes and adds them to the checksum.
func (s *frameSealer) emit(b []byte) error {
	s.crc = crc32.Update(s.crc, castagnoli, b)
	s.result.storedSize += int64(len(b))
	_, err := s.out.Write(b)
	return err
}

// frame compresses (when that saves space), seals and writes one frame,
// and records it in the index; after the last frame it writes the index
// and the footer.
func (s *frameSealer) frame(plain []byte, last bool) error {
	payload, flags := plain, byte(0)
	if s.compress && len(plain) > 0 {
		// A destination smaller than the input makes lz4 give up (n == 0)
		// as soon as the frame would not shrink.
		n, err := s.bufs.compressor.CompressBlock(plain, s.bufs.packed[:len(plain)-1])
		if err == nil && n > 0 {
			payload, flags = s.bufs.packed[:n], flagLZ4
			s.result.isCompressed = true
		}
	}
	nonce := frameNonce(s.counter, last)
	aad := frameAAD(s.ref, flags)
	out := append(s.bufs.sealed[:0], s.header...)
	s.header = nil
	start := len(out)
	out = s.aead.Seal(out, nonce[:], payload, aad[:])
	sealed := out[start:]
	var entry [indexEntrySize]byte
	binary.LittleEndian.PutUint32(entry[0:4], uint32(len(sealed)))
	binary.LittleEndian.PutUint32(entry[4:8], crc32.Checksum(sealed, castagnoli))
	entry[8] = flags
	s.index = append(s.index, entry[:]...)
	s.counter++
	s.result.plainSize += int64(len(plain))
	if last {
		out = append(out, s.trailer()...)
	}
	s.bufs.sealed = out[:0] // keeps what it grew to, for the next blob
	return s.emit(out)
}

// trailer returns the index followed by the footer.
func (s *frameSealer) trailer() []byte {
	var footer [footerSize]byte
	binary.LittleEndian.PutUint64(footer[0:8], uint64(s.result.plainSize))
	sum := crc32.Update(crc32.Checksum(s.index, castagnoli), castagnoli, footer[0:8])
	binary.LittleEndian.PutUint32(footer[8:12], sum)
	copy(footer[12:16], footerMagic[:])
	return append(s.index, footer[:]...)
}

// Result is valid once the last frame is written.
func (s *frameSealer) Result() sealResult {
	r := s.result
	r.crc = s.crc
	return r
}
