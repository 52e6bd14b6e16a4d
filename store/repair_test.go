package store_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/store"
)

// storedIn is where localfs keeps a blob of a volume at dir.
func storedIn(dir string, ref blobstore.Ref) string {
	hex := ref.String()
	return filepath.Join(dir, hex[:3], hex)
}

func readStored(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// scrubAll scrubs a volume (or refs on it) and returns what it found.
func scrubAll(s *store.Store, v *badger.Volume, opts store.ScrubOptions) (store.ScrubSummary, []store.Finding) {
	var found []store.Finding
	opts.Found = func(f store.Finding) { found = append(found, f) }
	return s.ScrubVolume(context.Background(), v, opts), found
}

// TestScrubRepairsFromAnotherVolume: scrub --repair replaces a damaged
// copy and a missing one from the other volume, both copies of a blob
// damaged in different frames with one assembled from their good frames,
// and leaves a blob damaged in the same frame of both copies as it was.
func TestScrubRepairsFromAnotherVolume(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	second, secondDir := addLocalVolume(t, s, "second")
	first, _ := s.Volume(ctx, store.DefaultVolume)
	damaged := put(t, s, store.DefaultVolume, randomBytes(t, 200_000))
	missing := put(t, s, store.DefaultVolume, randomBytes(t, 1000))
	apart := put(t, s, store.DefaultVolume, randomBytes(t, 200_000))
	same := put(t, s, store.DefaultVolume, randomBytes(t, 200_000))
	clean := put(t, s, store.DefaultVolume, randomBytes(t, 1000))
	if _, err := s.Replicate(ctx, first, second, store.ReplicateOptions{}); err != nil {
		t.Fatal(err)
	}
	flipByte(t, blobFile(s, damaged), 300)
	if err := os.Remove(storedIn(secondDir, missing)); err != nil {
		t.Fatal(err)
	}
	flipByte(t, blobFile(s, apart), 100)             // frame 0
	flipByte(t, storedIn(secondDir, apart), 150_000) // frame 1
	flipByte(t, blobFile(s, same), 100)              // frame 0
	flipByte(t, storedIn(secondDir, same), 120)      // frame 0
	sameFirst, sameSecond := readStored(t, blobFile(s, same)), readStored(t, storedIn(secondDir, same))

	sum, found := scrubAll(s, first, store.ScrubOptions{Repair: true})
	if sum.Damaged != 3 || sum.Repaired != 2 || !sum.Failed() {
		t.Errorf("repairing scrub of %s = %+v, want 3 damaged, 2 repaired, failed", first.Label, sum)
	}
	wantRepairs(t, found, map[blobstore.Ref]string{damaged: "damaged copy replaced from volume second",
		apart: "no copy was whole: replaced with one assembled from the good frames of every copy, and with it the copy on volume second"}, same)
	sum, found = scrubAll(s, second, store.ScrubOptions{Repair: true})
	if sum.Missing != 1 || sum.Damaged != 1 || sum.Repaired != 1 || !sum.Failed() {
		t.Errorf("repairing scrub of %s = %+v, want 1 missing, 1 damaged, 1 repaired, failed", second.Label, sum)
	}
	wantRepairs(t, found, map[blobstore.Ref]string{missing: "missing copy restored from volume default"}, same)

	// The repaired copies are the good ones byte for byte, and scrub clean.
	for _, ref := range []blobstore.Ref{damaged, missing, apart} {
		if !bytes.Equal(readStored(t, blobFile(s, ref)), readStored(t, storedIn(secondDir, ref))) {
			t.Errorf("the copies of %s differ after the repair", ref)
		}
	}
	for _, v := range []*badger.Volume{first, second} {
		refs := []blobstore.Ref{damaged, missing, apart, clean}
		if sum, found := scrubAll(s, v, store.ScrubOptions{Refs: refs}); sum.Failed() || len(found) != 0 {
			t.Errorf("scrub of %s after the repair = %+v, %+v; want clean", v.Label, sum, found)
		}
	}
	// With a frame good nowhere, both bad copies are left as they were.
	if !bytes.Equal(readStored(t, blobFile(s, same)), sameFirst) || !bytes.Equal(readStored(t, storedIn(secondDir, same)), sameSecond) {
		t.Error("a blob with no good copy was changed")
	}
	if sum, _ := scrubAll(s, first, store.ScrubOptions{}); sum.Damaged != 1 || sum.Missing != 0 {
		t.Errorf("second whole scrub of %s = %+v, want only the blob with no good copy", first.Label, sum)
	}
	if (store.ScrubSummary{Damaged: 1, Missing: 1, Repaired: 2}).Failed() {
		t.Error("a scrub that repaired all it found counts as failed")
	}
}

// wantRepairs checks a repairing scrub's findings: for each ref of
// repairs its damage, then its repair saying what the map says; for
// unrepairable its damage, not repaired.
func wantRepairs(t *testing.T, found []store.Finding, repairs map[blobstore.Ref]string, unrepairable blobstore.Ref) {
	t.Helper()
	kinds := map[blobstore.Ref][]store.FindingKind{}
	for i, f := range found {
		want, repaired := repairs[f.Ref]
		switch {
		case repaired:
			kinds[f.Ref] = append(kinds[f.Ref], f.Kind)
			if f.Kind == store.Repaired && (f.Error != want || i == 0 || found[i-1].Ref != f.Ref) {
				t.Errorf("repair finding %+v, want %q after the damage it repairs", f, want)
			}
		case f.Ref == unrepairable:
			if f.Kind != store.Damaged || !strings.Contains(f.Error, "; not repaired: no good copy on any volume") ||
				!strings.HasSuffix(f.Error, "a frame is damaged in every copy") {
				t.Errorf("finding for the blob with no good copy: %+v", f)
			}
		default:
			t.Errorf("unexpected finding %+v", f)
		}
	}
	for ref := range repairs {
		if k := kinds[ref]; len(k) != 2 || k[1] != store.Repaired {
			t.Errorf("findings for %s: %v, want the damage and its repair (all: %+v)", ref, k, found)
		}
	}
}
