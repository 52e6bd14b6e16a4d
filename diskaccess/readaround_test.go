package diskaccess_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/blobstore/memory"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/diskaccess/diskaccesstest"
)

// frameByte is the stored offset of a byte inside frame i of a blob with
// 64 KiB frames of incompressible content (a 48-byte header, then frames
// of 64 KiB and a 16-byte tag each).
func frameByte(i int) int { return 48 + i*(1<<16+16) + 100 }

// twoCopies is a blob of 4 frames and a bit stored on volumes 1 and 2,
// with a controller that records the damage it reads around.
type twoCopies struct {
	c        *diskaccess.Controller
	one, two *memory.Store
	keys     diskaccess.KeyRing
	ref      blobstore.Ref
	content  []byte

	mu      sync.Mutex
	reports []diskaccess.Damage
}

func newTwoCopies(t *testing.T, withCache bool) *twoCopies {
	t.Helper()
	ctx := context.Background()
	key := bytes.Repeat([]byte{7}, 32)
	store := diskaccesstest.NewMemoryStore("c", "k", key)
	tc := &twoCopies{keys: diskaccesstest.KeyRing{"k": key}, one: memory.New(1), two: memory.New(2)}
	opts := []diskaccess.Option{diskaccess.WithFrameShift(16), diskaccess.WithDamageHandler(func(d diskaccess.Damage) {
		tc.mu.Lock()
		defer tc.mu.Unlock()
		tc.reports = append(tc.reports, d)
	})}
	if withCache {
		opts = append(opts, diskaccess.WithFrameCache(diskaccess.NewFrameCache(8<<20)))
	}
	tc.c = diskaccess.New(store, opts...)
	for id, driver := range map[int]*memory.Store{1: tc.one, 2: tc.two} {
		tc.c.Initialize(ctx, "u", driver)
		tc.c.Mount(ctx, id, "u", driver)
	}
	tc.content = diskaccesstest.RandomContent(9, 4<<16+321)
	tc.ref = blobstore.RefOf(tc.content)
	if err := tc.c.WriteBlob(ctx, 1, "c", tc.ref, bytes.NewReader(tc.content), false); err != nil {
		t.Fatal(err)
	}
	if err := tc.c.Replicate(ctx, 1, 2, tc.ref); err != nil {
		t.Fatal(err)
	}
	return tc
}

// read reads the whole blob preferring volume, by ReadAt or by Stream.
func (tc *twoCopies) read(stream bool, volume int) ([]byte, error) {
	blob, err := tc.c.OpenBlobAnyCopy(context.Background(), tc.ref, tc.keys, volume)
	if err != nil {
		return nil, err
	}
	if stream {
		s := blob.Stream(0)
		defer s.Close()
		return io.ReadAll(s)
	}
	defer blob.Close()
	got := make([]byte, len(tc.content))
	n, err := blob.ReadAt(got, 0)
	return got[:n], err
}

// TestReadAround: a blob whose two copies are damaged in different frames
// reads whole through OpenBlobAnyCopy, by ReadAt and by Stream, with and
// without a frame cache, preferring either copy; each damaged copy is
// reported once, naming its frame; OpenBlob still reads its one copy.
func TestReadAround(t *testing.T) {
	for _, withCache := range []bool{false, true} {
		for _, stream := range []bool{false, true} {
			for _, volume := range []int{1, 2} {
				tc := newTwoCopies(t, withCache)
				tc.one.Corrupt(tc.ref, func(b []byte) []byte { b[frameByte(1)] ^= 1; return b })
				tc.two.Corrupt(tc.ref, func(b []byte) []byte { b[frameByte(3)] ^= 1; return b })
				how := map[bool]string{false: "ReadAt", true: "Stream"}[stream]
				for round := range 2 { // the second finds the reports made
					if got, err := tc.read(stream, volume); err != nil || !bytes.Equal(got, tc.content) {
						t.Errorf("%s from volume %d (cache %v, round %d): %d bytes, %v", how, volume, withCache, round, len(got), err)
					}
				}
				var reported []int
				for _, d := range tc.reports {
					var corrupt *diskaccess.CorruptBlobError
					if d.Ref != tc.ref || d.ReadFrom == d.Volume || !errors.As(d.Err, &corrupt) ||
						corrupt.Frame != map[int]int{1: 1, 2: 3}[d.Volume] {
						t.Errorf("%s from volume %d: report %+v", how, volume, d)
					}
					reported = append(reported, d.Volume)
				}
				// Only the preferred copy's damage is met (the other
				// copy gives its damaged frame), and reported once in
				// two reads.
				if len(reported) != 1 || reported[0] != volume {
					t.Errorf("%s from volume %d (cache %v): damage reported for volumes %v, want %d once", how, volume, withCache, reported, volume)
				}
			}
		}
	}

	tc := newTwoCopies(t, false)
	tc.one.Corrupt(tc.ref, func(b []byte) []byte { b[frameByte(1)] ^= 1; return b })
	blob, err := tc.c.OpenBlob(context.Background(), tc.ref, tc.keys, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer blob.Close()
	if _, err := blob.ReadAt(make([]byte, len(tc.content)), 0); !errors.Is(err, diskaccess.ErrCorrupt) {
		t.Errorf("OpenBlob of a damaged copy read: %v, want ErrCorrupt", err)
	}
}

// TestReadAroundLimits: a frame damaged in both copies is an error (the
// preferred copy's), the frames before it read; a copy cut short or gone
// is read around whole, and reported.
func TestReadAroundLimits(t *testing.T) {
	tc := newTwoCopies(t, false)
	tc.one.Corrupt(tc.ref, func(b []byte) []byte { b[frameByte(1)] ^= 1; return b })
	tc.two.Corrupt(tc.ref, func(b []byte) []byte { b[frameByte(1)] ^= 2; return b })
	got, err := tc.read(false, 1)
	var corrupt *diskaccess.CorruptBlobError
	if !errors.As(err, &corrupt) || corrupt.Volume != 1 || corrupt.Frame != 1 || !bytes.Equal(got, tc.content[:1<<16]) {
		t.Errorf("a frame damaged in both copies: %d bytes, %v", len(got), err)
	}
	if len(tc.reports) != 0 {
		t.Errorf("damage read around nowhere was reported: %+v", tc.reports)
	}

	for _, damage := range []string{"cut", "gone"} {
		tc := newTwoCopies(t, false)
		if damage == "cut" {
			tc.one.Corrupt(tc.ref, func(b []byte) []byte { return b[:len(b)/2] })
		} else if err := tc.one.Remove(context.Background(), tc.ref); err != nil {
			t.Fatal(err)
		}
		for _, stream := range []bool{false, true} {
			if got, err := tc.read(stream, 1); err != nil || !bytes.Equal(got, tc.content) {
				t.Errorf("a copy %s (stream %v): %d bytes, %v", damage, stream, len(got), err)
			}
		}
		if len(tc.reports) != 1 || tc.reports[0].Volume != 1 || tc.reports[0].ReadFrom != 2 || !errors.Is(tc.reports[0].Err, diskaccess.ErrCorrupt) {
			t.Errorf("a copy %s: reports %+v, want one for volume 1", damage, tc.reports)
		}
		tc.c.ForgetDamage(tc.ref, 1)
		tc.read(false, 1)
		if len(tc.reports) != 2 {
			t.Errorf("a copy %s, its damage forgotten: %d reports, want it reported again", damage, len(tc.reports))
		}
	}
}

// TestRepairFromFrames: copies damaged in different frames are replaced
// by one assembled from their good frames, which then verifies and reads;
// an intact copy is left alone; a frame damaged in both stores nothing.
func TestRepairFromFrames(t *testing.T) {
	ctx := context.Background()
	tc := newTwoCopies(t, false)
	if err := tc.c.RepairFromFrames(ctx, 1, tc.ref); !errors.Is(err, diskaccess.ErrCopyIntact) {
		t.Errorf("RepairFromFrames of an intact copy: %v, want ErrCopyIntact", err)
	}
	tc.one.Corrupt(tc.ref, func(b []byte) []byte { b[frameByte(1)] ^= 1; return b })
	tc.two.Corrupt(tc.ref, func(b []byte) []byte { b[frameByte(3)] ^= 1; return b })
	if err := tc.c.Repair(ctx, 2, 1, tc.ref); !errors.Is(err, diskaccess.ErrCorrupt) {
		t.Fatalf("Repair from a copy damaged elsewhere: %v, want ErrCorrupt", err)
	}
	if err := tc.c.RepairFromFrames(ctx, 1, tc.ref); err != nil {
		t.Fatalf("RepairFromFrames: %v", err)
	}
	blob, err := tc.c.OpenBlob(ctx, tc.ref, tc.keys, 1)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(tc.content))
	if _, err := blob.ReadAt(got, 0); err != nil || !bytes.Equal(got, tc.content) {
		t.Errorf("the assembled copy reads: %v", err)
	}
	blob.Close()
	if err := tc.c.Repair(ctx, 1, 2, tc.ref); err != nil {
		t.Errorf("the other copy, from the assembled one: %v", err)
	}

	tc = newTwoCopies(t, false)
	tc.one.Corrupt(tc.ref, func(b []byte) []byte { b[frameByte(2)] ^= 1; return b })
	tc.two.Corrupt(tc.ref, func(b []byte) []byte { b[frameByte(2)] ^= 4; return b })
	stored := func() []byte {
		rc, err := tc.one.RawFetch(ctx, tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return b
	}
	before := stored()
	if err := tc.c.RepairFromFrames(ctx, 1, tc.ref); !errors.Is(err, diskaccess.ErrNoGoodFrame) {
		t.Errorf("RepairFromFrames with frame 2 damaged in both: %v, want ErrNoGoodFrame", err)
	}
	if after := stored(); !bytes.Equal(before, after) {
		t.Error("a failed RepairFromFrames changed the copy")
	}
}

// TestReadFromAnotherVolume: a blob the preferred volume does not hold is
// read from one that does, and is not reported as damage; one no mounted
// volume holds is the preferred volume's error.
func TestReadFromAnotherVolume(t *testing.T) {
	ctx := context.Background()
	tc := newTwoCopies(t, false)
	other := diskaccesstest.RandomContent(11, 3<<16)
	ref := blobstore.RefOf(other)
	if err := tc.c.WriteBlob(ctx, 2, "c", ref, bytes.NewReader(other), false); err != nil {
		t.Fatal(err)
	}
	blob, err := tc.c.OpenBlobAnyCopy(ctx, ref, tc.keys, 1)
	if err != nil {
		t.Fatalf("a blob only volume 2 holds, preferring volume 1: %v", err)
	}
	got := make([]byte, len(other))
	if n, err := blob.ReadAt(got, 0); err != nil || n != len(other) || !bytes.Equal(got, other) {
		t.Errorf("read %d bytes, %v", n, err)
	}
	blob.Close()
	if len(tc.reports) != 0 {
		t.Errorf("a blob never copied to the preferred volume was reported as damage: %+v", tc.reports)
	}
	if _, err := tc.c.OpenBlob(ctx, ref, tc.keys, 1); !errors.As(err, new(*diskaccess.NotOnVolumeError)) {
		t.Errorf("OpenBlob of it on volume 1: %v, want a NotOnVolumeError", err)
	}
	if err := tc.two.Remove(ctx, ref); err != nil {
		t.Fatal(err)
	}
	tc.c.Unmount(2)
	if _, err := tc.c.OpenBlobAnyCopy(ctx, ref, tc.keys, 1); !errors.As(err, new(*diskaccess.NotOnVolumeError)) {
		t.Errorf("with the volume that holds it unmounted: %v, want a NotOnVolumeError", err)
	}
}
