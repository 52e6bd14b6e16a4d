package diskaccess

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
)

func addGoldenSeeds(f *testing.F, withRef bool) {
	for _, v := range goldenVectors {
		stored, err := os.ReadFile(filepath.Join("testdata", "golden-"+v.name+".blob"))
		if err != nil {
			f.Fatal(err)
		}
		if withRef {
			ref := blobstore.RefOf(v.plain)
			stored = append(ref[:], stored...)
		}
		f.Add(stored)
	}
}

// FuzzParseLayout: the keyless parser never panics, and what it accepts is
// consistent: frames tile the space between header and index exactly.
func FuzzParseLayout(f *testing.F) {
	addGoldenSeeds(f, false)
	f.Fuzz(func(t *testing.T, stored []byte) {
		l, err := parseLayout(rawOf(stored), int64(len(stored)))
		if err != nil {
			return
		}
		end := int64(headerSize)
		for i, frame := range l.frames {
			if frame.offset != end || frame.storedLen < tagSize {
				t.Fatalf("frame %d at %d (len %d), previous frame ended at %d", i, frame.offset, frame.storedLen, end)
			}
			end += int64(frame.storedLen)
		}
		if end != l.indexOffset() || l.indexOffset() > int64(len(stored)) {
			t.Fatalf("frames end at %d, index at %d, blob is %d bytes", end, l.indexOffset(), len(stored))
		}
	})
}

// FuzzOpen: reading arbitrary stored bytes (the first 32 bytes of the input
// are the ref) never panics, and whatever it returns without error is the
// plaintext of its ref.
func FuzzOpen(f *testing.F) {
	addGoldenSeeds(f, true)
	f.Fuzz(func(t *testing.T, input []byte) {
		if len(input) < blobstore.RefSize {
			return
		}
		ref := blobstore.Ref(input[:blobstore.RefSize])
		stored := input[blobstore.RefSize:]
		blob, err := openBlobReader(ref, 1, rawOf(stored), goldenKey)
		if err != nil {
			return
		}
		plain, err := io.ReadAll(newFetchReader(blob))
		if err == nil && blobstore.RefOf(plain) != ref {
			t.Fatalf("opened %d bytes that do not hash to their ref", len(plain))
		}
	})
}
