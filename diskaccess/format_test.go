package diskaccess

import (
	"bytes"
	"encoding/binary"
	"flag"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/")

// Test frames are 64 KiB so that multi-frame blobs stay small.
const (
	testShift = 16
	testFrame = 1 << testShift
)

var (
	goldenKey  = seq(0x00, 32)
	goldenSalt = [saltSize]byte(seq(0x20, 32))
)

func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func randomPlain(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func textPlain(n int) []byte {
	var buf bytes.Buffer
	for i := 0; buf.Len() < n; i++ {
		buf.WriteString("frame ")
		buf.WriteString(string(rune('a' + i%26)))
		buf.WriteString(" of the stofuse golden vector\n")
	}
	return buf.Bytes()[:n]
}

// seal encodes plain as format v1 in memory.
func seal(t testing.TB, plain []byte, key []byte, salt [saltSize]byte, compress bool) []byte {
	t.Helper()
	var stored bytes.Buffer
	s, err := newFrameSealer(blobstore.RefOf(plain), key, salt, testShift, newSealBuffers(1<<testShift), compress, &stored)
	if err != nil {
		t.Fatal(err)
	}
	// Frames as a BlobWriter cuts them: a full frame is the last only if
	// nothing follows it.
	size := 1 << testShift
	for len(plain) > size {
		if err := s.frame(plain[:size], false); err != nil {
			t.Fatal(err)
		}
		plain = plain[size:]
	}
	if err := s.frame(plain, true); err != nil {
		t.Fatal(err)
	}
	return stored.Bytes()
}

type memRaw struct{ *bytes.Reader }

func (memRaw) Close() error { return nil }

func rawOf(stored []byte) memRaw { return memRaw{bytes.NewReader(stored)} }

// openAll reads a stored blob from start to end as Fetch does and returns
// the bytes it handed out before failing, if it fails.
func openAll(ref blobstore.Ref, key, stored []byte) ([]byte, error) {
	blob, err := openBlobReader(ref, 1, rawOf(stored), key)
	if err != nil {
		return nil, err
	}
	r := newFetchReader(blob)
	defer r.Close()
	var got []byte
	buf := make([]byte, 10_000)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
}

var goldenVectors = []struct {
	name     string
	plain    []byte
	compress bool
	// storedSize is pinned by the overhead formula in docs/format.md.
	storedSize int
}{
	{"empty", nil, true, 89},
	{"one-byte", []byte("a"), true, 90},
	{"one-frame", randomPlain(1, testFrame), true, testFrame + 89},
	{"one-frame-plus-one", randomPlain(2, testFrame+1), true, testFrame + 1 + 114},
	{"text-three-frames", textPlain(2*testFrame + 1000), true, -1},
	{"text-uncompressed", textPlain(testFrame + 10), false, testFrame + 10 + 114},
}

// TestGoldenVectors pins the format: sealing with a fixed key and salt must
// give exactly the bytes in testdata/, and those bytes must open. A change
// that alters stored bytes fails here (run with -update only for a new
// format version).
func TestGoldenVectors(t *testing.T) {
	for _, v := range goldenVectors {
		t.Run(v.name, func(t *testing.T) {
			path := filepath.Join("testdata", "golden-"+v.name+".blob")
			stored := seal(t, v.plain, goldenKey, goldenSalt, v.compress)
			if *update {
				if err := os.WriteFile(path, stored, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(stored, golden) {
				t.Fatalf("sealing %s gives %d bytes that differ from %s (%d bytes): the stored format changed", v.name, len(stored), path, len(golden))
			}
			if v.storedSize >= 0 && len(golden) != v.storedSize {
				t.Fatalf("%s is %d bytes, the overhead formula says %d", v.name, len(golden), v.storedSize)
			}
			got, err := openAll(blobstore.RefOf(v.plain), goldenKey, golden)
			if err != nil || !bytes.Equal(got, v.plain) {
				t.Fatalf("opening %s: %v", path, err)
			}
		})
	}
}

func TestStoredSizeFormula(t *testing.T) {
	for _, size := range []int{0, 1, testFrame - 1, testFrame, testFrame + 1, 5*testFrame + 3} {
		stored := seal(t, randomPlain(uint64(size), size), goldenKey, goldenSalt, true)
		if want := StoredSize(int64(size), testShift); int64(len(stored)) != want {
			t.Errorf("%d plaintext bytes stored in %d, StoredSize says %d", size, len(stored), want)
		}
	}
}

func TestCompressionOnlyWhenItSaves(t *testing.T) {
	// Frame 0 text, frame 1 random: only frame 0 is compressed.
	plain := append(textPlain(testFrame), randomPlain(3, testFrame)...)
	l, err := parseLayout(rawOf(seal(t, plain, goldenKey, goldenSalt, true)), int64(len(seal(t, plain, goldenKey, goldenSalt, true))))
	if err != nil {
		t.Fatal(err)
	}
	if l.frames[0].flags != flagLZ4 || l.frames[1].flags != 0 {
		t.Fatalf("frame flags = %d, %d; want lz4 for text only", l.frames[0].flags, l.frames[1].flags)
	}
	if l.frames[0].storedLen >= testFrame/4 {
		t.Fatalf("text frame stored in %d bytes: not compressed", l.frames[0].storedLen)
	}
}

// fixTrailer recomputes the index checksum after a test edited the index or
// the plaintext size, as anyone without the key can: such edits must still
// fail authentication.
func fixTrailer(stored []byte, frames int) []byte {
	footer := stored[len(stored)-footerSize:]
	index := stored[len(stored)-footerSize-frames*indexEntrySize : len(stored)-footerSize]
	sum := crc32.Update(crc32.Checksum(index, castagnoli), castagnoli, footer[0:8])
	binary.LittleEndian.PutUint32(footer[8:12], sum)
	return stored
}

// rebuild assembles a blob from a header, stored frames and their entries,
// with a consistent index and footer: a keyless forger's best effort.
func rebuild(header []byte, frames [][]byte, flags []byte, plainSize int64) []byte {
	out := append([]byte(nil), header...)
	var index []byte
	for i, f := range frames {
		out = append(out, f...)
		index = binary.LittleEndian.AppendUint32(index, uint32(len(f)))
		index = binary.LittleEndian.AppendUint32(index, crc32.Checksum(f, castagnoli))
		index = append(index, flags[i])
	}
	out = append(out, index...)
	var footer [footerSize]byte
	binary.LittleEndian.PutUint64(footer[0:8], uint64(plainSize))
	copy(footer[12:], footerMagic[:])
	out = append(out, footer[:]...)
	return fixTrailer(out, len(frames))
}

// splitFrames returns a valid blob's stored frames and flags.
func splitFrames(t *testing.T, stored []byte) ([][]byte, []byte) {
	t.Helper()
	l, err := parseLayout(rawOf(stored), int64(len(stored)))
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	var flags []byte
	for _, f := range l.frames {
		frames = append(frames, stored[f.offset:f.offset+int64(f.storedLen)])
		flags = append(flags, f.flags)
	}
	return frames, flags
}
