package diskaccesstest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// headerSize, footerSize and indexEntrySize mirror docs/format.md.
const (
	headerSize     = 48
	footerSize     = 16
	indexEntrySize = 9
	tagSize        = 16
)

func corruptError(t *testing.T, what string, err error) *diskaccess.CorruptBlobError {
	t.Helper()
	var ce *diskaccess.CorruptBlobError
	if !errors.As(err, &ce) || !errors.Is(err, diskaccess.ErrCorrupt) {
		t.Fatalf("%s: err = %v, want a *CorruptBlobError", what, err)
	}
	return ce
}

func testScrubClean(t *testing.T, h *harness) {
	for _, size := range []int{0, 1, 3*frameSize + 7} {
		ref := h.write(t, 1, RandomContent(30, size))
		checked, err := h.c.Scrub(h.ctx, ref, 1)
		if err != nil || checked != h.meta(t, ref).SizeOnDisk {
			t.Fatalf("Scrub of a clean %d-byte blob = %d, %v; want %d, nil", size, checked, err, h.meta(t, ref).SizeOnDisk)
		}
	}
}

func testScrubNamesDamagedFrame(t *testing.T, h *harness) {
	content := RandomContent(31, 4*frameSize)
	ref := h.write(t, 1, content)
	// Frame 2 starts after the header and two full stored frames.
	offset := headerSize + 2*(frameSize+tagSize) + 1000
	h.damage(t, 1, ref, func(b []byte) []byte { b[offset] ^= 0x01; return b })
	_, err := h.c.Scrub(h.ctx, ref, 1)
	ce := corruptError(t, "Scrub of a blob with frame 2 flipped", err)
	if ce.Ref != ref || ce.Frame != 2 || ce.Volume != 1 {
		t.Fatalf("Scrub error names ref %s frame %d volume %d; want %s frame 2 volume 1 (%v)", ce.Ref, ce.Frame, ce.Volume, ref, err)
	}
	// The same damage read with the key: no byte of frame 2.
	got, err := h.fetch(t, 1, ref)
	if ce := corruptError(t, "Fetch of the damaged blob", err); ce.Frame != 2 || len(got) > 2*frameSize {
		t.Fatalf("Fetch returned %d bytes and blamed frame %d; want at most %d bytes and frame 2", len(got), ce.Frame, 2*frameSize)
	}
}

func testScrubRegions(t *testing.T, h *harness) {
	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
		want   diskaccess.Region
	}{
		{"salt", func(b []byte) []byte { b[20] ^= 0x80; return b }, diskaccess.RegionHeader},
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }, diskaccess.RegionHeader},
		{"index", func(b []byte) []byte { b[len(b)-footerSize-indexEntrySize+2] ^= 1; return b }, diskaccess.RegionIndex},
		{"footer", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, diskaccess.RegionFooter},
		{"truncated", func(b []byte) []byte { return b[:len(b)-100] }, diskaccess.RegionWhole},
		{"appended", func(b []byte) []byte { return append(b, 0) }, diskaccess.RegionWhole},
	} {
		content := RandomContent(uint64(len(tc.name)), 2*frameSize+5)
		ref := h.write(t, 1, append([]byte(tc.name), content...))
		h.damage(t, 1, ref, tc.damage)
		_, err := h.c.Scrub(h.ctx, ref, 1)
		if ce := corruptError(t, "Scrub after damage to the "+tc.name, err); ce.Region != tc.want || ce.Ref != ref {
			t.Errorf("%s: Scrub blames %s of %s; want %s of %s (%v)", tc.name, ce.Region, ce.Ref, tc.want, ref, err)
		}
	}
}

func testScrubMissing(t *testing.T, h *harness) {
	ref := h.write(t, 1, []byte("soon gone"))
	if err := os.Remove(h.storedPath(1, ref)); err != nil {
		t.Fatal(err)
	}
	_, err := h.c.Scrub(h.ctx, ref, 1)
	if !errors.Is(err, diskaccess.ErrMissing) || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Scrub of a lost blob: %v, want ErrMissing (not 'not found')", err)
	}
	if _, err := h.fetch(t, 1, ref); !errors.Is(err, diskaccess.ErrMissing) {
		t.Fatalf("Fetch of a lost blob: %v, want ErrMissing", err)
	}
}

func testReplicate(t *testing.T, h *harness) {
	h.addVolume(t, 2, true)
	content := TextContent(32, 3*frameSize)
	ref := h.write(t, 1, content)
	if err := h.c.Replicate(h.ctx, 1, 2, ref); err != nil {
		t.Fatalf("Replicate: %v", err)
	}
	first, _ := os.ReadFile(h.storedPath(1, ref))
	second, _ := os.ReadFile(h.storedPath(2, ref))
	if len(first) == 0 || string(first) != string(second) {
		t.Fatal("the replica's bytes differ from the source's")
	}
	if meta := h.meta(t, ref); len(meta.Volumes) != 2 || meta.Volumes[1] != 2 {
		t.Fatalf("Volumes after Replicate = %v, want [1 2]", meta.Volumes)
	}
	if got, err := h.fetch(t, 2, ref); err != nil || string(got) != string(content) {
		t.Fatalf("Fetch from the replica: %v", err)
	}
	if _, err := h.c.Scrub(h.ctx, ref, 2); err != nil {
		t.Fatalf("Scrub of the replica: %v", err)
	}
	if err := h.c.Replicate(h.ctx, 1, 2, ref); err != nil {
		t.Fatalf("second Replicate: %v", err)
	}
}

func testReplicateRefusesDamagedSource(t *testing.T, h *harness) {
	h.addVolume(t, 2, true)
	ref := h.write(t, 1, RandomContent(33, 2*frameSize))
	h.damage(t, 1, ref, func(b []byte) []byte { b[headerSize+frameSize+tagSize+7] ^= 0x10; return b })
	err := h.c.Replicate(h.ctx, 1, 2, ref)
	if ce := corruptError(t, "Replicate from a damaged source", err); ce.Frame != 1 || ce.Volume != 1 {
		t.Fatalf("Replicate blames frame %d of volume %d, want frame 1 of volume 1", ce.Frame, ce.Volume)
	}
	if h.blobCount(t, 2) != 0 {
		t.Fatal("a damaged source was copied")
	}
	if meta := h.meta(t, ref); len(meta.Volumes) != 1 {
		t.Fatalf("a damaged source's copy was recorded: Volumes = %v", meta.Volumes)
	}
}

func testReplicateRefusesAbsentSource(t *testing.T, h *harness) {
	h.addVolume(t, 2, true)
	h.addVolume(t, 3, true)
	ref := h.write(t, 1, []byte("only on 1"))
	if err := h.c.Replicate(h.ctx, 2, 3, ref); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Replicate from a volume without the blob: %v, want fs.ErrNotExist", err)
	}
	if err := h.c.Replicate(h.ctx, 1, 3, blobstore.RefOf([]byte("unknown"))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Replicate of an unknown blob: %v, want fs.ErrNotExist", err)
	}
	if h.blobCount(t, 3) != 0 {
		t.Fatal("Replicate stored something from nothing")
	}
}

// swapped writes two blobs of one size to volume 1 and swaps their stored
// files, as a misplaced copy or a careless hand would.
func (h *harness) swapped(t *testing.T) (first, second blobstore.Ref) {
	t.Helper()
	first = h.write(t, 1, RandomContent(34, 2*frameSize+11))
	second = h.write(t, 1, RandomContent(35, 2*frameSize+11))
	a, b := h.stored(t, 1, first), h.stored(t, 1, second)
	h.damage(t, 1, first, func([]byte) []byte { return b })
	h.damage(t, 1, second, func([]byte) []byte { return a })
	return first, second
}

func testScrubNamesSwappedBlob(t *testing.T, h *harness) {
	first, second := h.swapped(t)
	for _, tc := range []struct {
		name string
		keys diskaccess.KeyRing
		want string // how it knows whose the bytes are
	}{
		{"without a key", nil, "they have its stored size and CRC-32C (%x; this blob's is %x)"},
		{"with the key", h.Keys, "its key opens them as its own"},
	} {
		for _, pair := range [][2]blobstore.Ref{{first, second}, {second, first}} {
			ref, other := pair[0], pair[1]
			_, err := h.c.ScrubWithKeys(h.ctx, ref, 1, tc.keys)
			ce := corruptError(t, "Scrub of a swapped blob "+tc.name, err)
			var otherErr *diskaccess.OtherBlobError
			if !errors.As(err, &otherErr) || otherErr.Blob != other || ce.Ref != ref || ce.Region != diskaccess.RegionWhole {
				t.Fatalf("Scrub %s of a blob whose file holds %s's bytes: %v; want a *CorruptBlobError (stored bytes) of %s wrapping an *OtherBlobError naming %s",
					tc.name, other, err, ref, other)
			}
			want := "they are blob " + other.String() + "'s, not this blob's: " + tc.want
			if tc.keys == nil {
				want = fmt.Sprintf(want, h.meta(t, other).ExpectedCrc32, h.meta(t, ref).ExpectedCrc32)
			}
			if ce.Err.Error() != want {
				t.Errorf("Scrub %s of a swapped blob says\n%q\nwant\n%q", tc.name, ce.Err.Error(), want)
			}
		}
	}
	// Reading it with the key never returns the other blob's bytes.
	if got, err := h.fetch(t, 1, first); !errors.Is(err, diskaccess.ErrCorrupt) || len(got) != 0 {
		t.Fatalf("Fetch of a swapped blob: %d bytes, %v; want none and a corruption error", len(got), err)
	}
}
