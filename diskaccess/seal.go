package diskaccess

import (
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
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

// sealer is an io.Reader of a blob's stored bytes, made from its plaintext
// frame by frame, so memory stays at a few frames whatever the blob size.
//
// If verifyRef is set, the plaintext's SHA-256 is checked against the ref
// after the last plaintext byte is read and before the last frame is sealed:
// on mismatch Read returns ErrRefMismatch, and a driver given this reader
// stores nothing, since it never saw io.EOF.
type sealer struct {
	ref       blobstore.Ref
	aead      cipher.AEAD
	header    [headerSize]byte
	compress  bool
	verifyRef bool
	frames    *plainFrames

	compressor lz4.Compressor
	packed     []byte // compressed frame, before sealing
	sealed     []byte // the sealed frame being handed out
	index      []byte // index entries so far
	pending    []byte // stored bytes produced but not yet read
	counter    int64  // frames sealed
	crc        uint32
	result     sealResult
	trailed    bool // the trailer was produced
	done       bool // Read returned io.EOF: every stored byte was read
	err        error
}

func newSealer(ref blobstore.Ref, dataKey []byte, salt [saltSize]byte, frameShift uint8,
	plaintext io.Reader, compress, verifyRef bool) (*sealer, error) {
	header := encodeHeader(frameShift, salt)
	aead, err := newFrameAEAD(dataKey, header)
	if err != nil {
		return nil, err
	}
	frameSize := 1 << frameShift
	s := &sealer{
		ref:       ref,
		aead:      aead,
		header:    header,
		compress:  compress,
		verifyRef: verifyRef,
		frames:    newPlainFrames(plaintext, frameSize, verifyRef),
		sealed:    make([]byte, 0, frameSize+tagSize),
	}
	if compress {
		s.packed = make([]byte, frameSize)
	}
	s.emit(s.header[:])
	return s, nil
}

// Read implements io.Reader.
func (s *sealer) Read(p []byte) (int, error) {
	for len(s.pending) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		if s.trailed {
			s.done = true
			return 0, io.EOF
		}
		s.err = s.next()
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

// emit queues stored bytes for Read and adds them to the checksum.
func (s *sealer) emit(b []byte) {
	s.crc = crc32.Update(s.crc, castagnoli, b)
	s.result.storedSize += int64(len(b))
	s.pending = b
}

// next produces the next frame, or the index and footer after the last one.
func (s *sealer) next() error {
	if s.counter > 0 && s.frames.lastServed {
		s.emit(s.trailer())
		s.trailed = true
		return nil
	}
	plain, last, err := s.frames.next()
	if err != nil {
		return err
	}
	if last && s.verifyRef && s.frames.sum() != s.ref {
		return fmt.Errorf("%w: content hashes to %s, not %s", ErrRefMismatch, s.frames.sum(), s.ref)
	}
	s.emit(s.sealFrame(plain, last))
	return nil
}

// sealFrame compresses (when that saves space) and seals one frame, and
// records it in the index.
func (s *sealer) sealFrame(plain []byte, last bool) []byte {
	payload, flags := plain, byte(0)
	if s.compress && len(plain) > 0 {
		// A destination smaller than the input makes lz4 give up (n == 0)
		// as soon as the frame would not shrink.
		n, err := s.compressor.CompressBlock(plain, s.packed[:len(plain)-1])
		if err == nil && n > 0 {
			payload, flags = s.packed[:n], flagLZ4
			s.result.isCompressed = true
		}
	}
	nonce := frameNonce(s.counter, last)
	aad := frameAAD(s.ref, flags)
	s.sealed = s.aead.Seal(s.sealed[:0], nonce[:], payload, aad[:])
	var entry [indexEntrySize]byte
	binary.LittleEndian.PutUint32(entry[0:4], uint32(len(s.sealed)))
	binary.LittleEndian.PutUint32(entry[4:8], crc32.Checksum(s.sealed, castagnoli))
	entry[8] = flags
	s.index = append(s.index, entry[:]...)
	s.counter++
	s.result.plainSize += int64(len(plain))
	return s.sealed
}

// trailer returns the index followed by the footer.
func (s *sealer) trailer() []byte {
	var footer [footerSize]byte
	binary.LittleEndian.PutUint64(footer[0:8], uint64(s.result.plainSize))
	sum := crc32.Update(crc32.Checksum(s.index, castagnoli), castagnoli, footer[0:8])
	binary.LittleEndian.PutUint32(footer[8:12], sum)
	copy(footer[12:16], footerMagic[:])
	return append(s.index, footer[:]...)
}

// Result is valid once Read has returned io.EOF (done).
func (s *sealer) Result() sealResult {
	r := s.result
	r.crc = s.crc
	return r
}

// plainFrames cuts plaintext into frames, reading one frame ahead so that it
// knows which frame is the last, and hashes it on the way.
type plainFrames struct {
	src        io.Reader
	hash       hash.Hash
	cur, ahead []byte
	aheadLen   int
	aheadEOF   bool
	started    bool
	lastServed bool
}

func newPlainFrames(src io.Reader, frameSize int, hashIt bool) *plainFrames {
	f := &plainFrames{src: src, cur: make([]byte, frameSize), ahead: make([]byte, frameSize)}
	if hashIt {
		f.hash = sha256.New()
	}
	return f
}

// next returns the next frame and whether it is the last. The frame is
// valid until the following call.
func (f *plainFrames) next() ([]byte, bool, error) {
	if !f.started {
		f.started = true
		if err := f.readAhead(); err != nil {
			return nil, false, err
		}
	}
	f.cur, f.ahead = f.ahead, f.cur
	n := f.aheadLen
	if f.aheadEOF {
		f.lastServed = true
		return f.cur[:n], true, nil
	}
	if err := f.readAhead(); err != nil {
		return nil, false, err
	}
	// A full frame followed by nothing is the last frame.
	if f.aheadEOF && f.aheadLen == 0 {
		f.lastServed = true
		return f.cur[:n], true, nil
	}
	return f.cur[:n], false, nil
}

func (f *plainFrames) readAhead() error {
	n, err := io.ReadFull(f.src, f.ahead)
	switch err {
	case nil:
	case io.EOF, io.ErrUnexpectedEOF:
		f.aheadEOF = true
	default:
		return err
	}
	f.aheadLen = n
	if f.hash != nil {
		f.hash.Write(f.ahead[:n])
	}
	return nil
}

func (f *plainFrames) sum() blobstore.Ref {
	var ref blobstore.Ref
	f.hash.Sum(ref[:0])
	return ref
}
