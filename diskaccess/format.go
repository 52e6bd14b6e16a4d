package diskaccess

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/stofuse/stofuse/blobstore"
)

// Blob format v1; docs/format.md is the byte-exact description.
//
//	header (48) | frame 0 | frame 1 | ... | frame n-1 | index (9 n) | footer (16)
const (
	formatVersion  = 1
	headerSize     = 48
	footerSize     = 16
	indexEntrySize = 9
	saltSize       = 32
	tagSize        = 16 // AES-GCM tag
	nonceSize      = 12
	dataKeySize    = 32 // AES-256

	minFrameShift = 16 // 64 KiB
	maxFrameShift = 20 // 1 MiB
	// DefaultFrameShift makes 128 KiB frames, the size of the kernel's FUSE
	// reads. BenchmarkFrameSize measured sequential reads about as fast as
	// with larger frames and random 4 KiB reads twice as fast as with 256 KiB
	// frames (docs/format.md has the table).
	DefaultFrameShift = 17

	flagLZ4 byte = 1 << 0

	// maxPlainSize bounds the plaintext size a footer may claim (1 EiB), so
	// that frame arithmetic never overflows.
	maxPlainSize = 1 << 60
)

var (
	headerMagic = [7]byte{'s', 't', 'o', 'f', 'u', 's', 'e'}
	footerMagic = [4]byte{'S', 'F', 'B', '1'}
	castagnoli  = crc32.MakeTable(crc32.Castagnoli)
)

// frameCount is the number of frames of a plaintext of plainSize bytes: at
// least one, so that even an empty blob has a last frame to authenticate.
func frameCount(plainSize int64, frameShift uint8) int64 {
	if plainSize == 0 {
		return 1
	}
	return (plainSize-1)>>frameShift + 1
}

// framePlainSize is the plaintext size of frame i of n.
func framePlainSize(i, n, plainSize int64, frameShift uint8) int64 {
	if i < n-1 {
		return 1 << frameShift
	}
	return plainSize - (n-1)<<frameShift
}

// encodeHeader returns the 48 header bytes.
func encodeHeader(frameShift uint8, salt [saltSize]byte) [headerSize]byte {
	var h [headerSize]byte
	copy(h[0:7], headerMagic[:])
	h[7] = formatVersion
	h[8] = frameShift
	copy(h[16:48], salt[:])
	return h
}

// newFrameAEAD derives the blob's subkey from the collection data key and
// the header (which holds the salt), and returns AES-256-GCM under it. Any
// change to the header changes the subkey, so every frame fails to open.
func newFrameAEAD(dataKey []byte, header [headerSize]byte) (cipher.AEAD, error) {
	if len(dataKey) != dataKeySize {
		return nil, fmt.Errorf("data key has %d bytes, want %d", len(dataKey), dataKeySize)
	}
	info := "stofuse blob v1 frame key" + string(header[0:16])
	subkey, err := hkdf.Key(sha256.New, dataKey, header[16:48], info, dataKeySize)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(subkey)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// frameNonce is the STREAM nonce: an 11-byte big-endian frame counter and a
// last-frame flag. Dropping, reordering or appending frames changes which
// nonce a frame is opened with, so it fails to open.
func frameNonce(frame int64, last bool) [nonceSize]byte {
	var nonce [nonceSize]byte
	binary.BigEndian.PutUint64(nonce[3:11], uint64(frame))
	if last {
		nonce[11] = 1
	}
	return nonce
}

// frameAAD binds a frame to its blob's ref and to its flags, so that a
// frame cannot be moved to another ref and its compression flag cannot be
// flipped.
func frameAAD(ref blobstore.Ref, flags byte) [blobstore.RefSize + 1]byte {
	var aad [blobstore.RefSize + 1]byte
	copy(aad[:], ref[:])
	aad[blobstore.RefSize] = flags
	return aad
}

// StoredSize returns the stored size of an incompressible plaintext of
// plainSize bytes in format v1 with the given frame shift.
func StoredSize(plainSize int64, frameShift uint8) int64 {
	n := frameCount(plainSize, frameShift)
	return headerSize + plainSize + n*(tagSize+indexEntrySize) + footerSize
}
