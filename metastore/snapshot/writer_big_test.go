package snapshot

import (
	"context"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
)

// TestMillionEntryDir builds a directory of a million files (250 000 under
// the race detector) without holding its listing, checks that the
// writer's memory stays bounded, and that a second build with a file
// changed, one added and one removed emits only a few blobs that the first
// did not.
func TestMillionEntryDir(t *testing.T) {
	n := 1_000_000
	if raceEnabled {
		n = 250_000
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	seen := map[blobstore.Ref]bool{}
	var peak uint64
	emits := 0
	rootA := buildBig(t, n, func(_ context.Context, ref blobstore.Ref, _ []byte) error {
		seen[ref] = true
		if emits++; emits%200 == 0 { // a forced GC shows the live heap
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
		}
		return nil
	}, nil)
	grown := int64(peak) - int64(before.HeapAlloc)
	t.Logf("%d entries: %d blobs, live heap grew by at most %d KiB while building", n, len(seen), grown>>10)
	if grown > 8<<20 {
		t.Fatalf("live heap grew by %d MiB while building: the writer holds the listing", grown>>20)
	}
	var fresh []int
	rootB := buildBig(t, n, func(_ context.Context, ref blobstore.Ref, plain []byte) error {
		if !seen[ref] {
			fresh = append(fresh, len(plain))
		}
		return nil
	}, threeChanges(n))
	t.Logf("after changing, adding and removing one file: %d new blobs of %v bytes", len(fresh), fresh)
	if rootA == rootB || len(fresh) == 0 || len(fresh) > 10 {
		t.Fatalf("the changed directory emitted %d new blobs", len(fresh))
	}
}

// threeChanges alters a generated listing in three places far apart.
func threeChanges(n int) func(int, *Entry) []Entry {
	return func(i int, e *Entry) []Entry {
		switch i {
		case n / 4:
			e.Mode = 0o600
		case n / 2:
			return []Entry{*e, fileEntry(bigName(i)+"-new", i)}
		case 3 * n / 4:
			return nil
		}
		return []Entry{*e}
	}
}

// TestDeterministic: the same entries give the same blobs and root however
// they are fed, and however the directory looked before.
func TestDeterministic(t *testing.T) {
	const n = 30_000
	entries := make([]Entry, n)
	for i := range entries {
		entries[i] = fileEntry(bigName(i), i)
	}
	ctx := context.Background()
	var roots []blobstore.Ref
	var stores []*memStore
	for seed := range uint64(3) {
		shuffled := append([]Entry(nil), entries...)
		rand.New(rand.NewPCG(seed, seed)).Shuffle(n, func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		store := newMemStore()
		root, err := BuildDir(ctx, shuffled, store.emit)
		if err != nil {
			t.Fatal(err)
		}
		roots, stores = append(roots, root), append(stores, store)
	}
	store := newMemStore()
	roots = append(roots, buildBig(t, n, store.emit, nil))
	stores = append(stores, store)
	// A directory edited and edited back is the directory it was.
	edited := newMemStore()
	buildBig(t, n, edited.emit, threeChanges(n))
	roots = append(roots, buildBig(t, n, edited.emit, nil))
	for i := range roots {
		if roots[i] != roots[0] {
			t.Fatalf("build %d gives root %s, build 0 %s", i, roots[i], roots[0])
		}
	}
	for i, s := range stores {
		if len(s.blobs) != len(stores[0].blobs) || s.emitted != stores[0].emitted {
			t.Fatalf("build %d emitted %d blobs (%d distinct), build 0 %d (%d)", i, s.emitted, len(s.blobs), stores[0].emitted, len(stores[0].blobs))
		}
	}
}
