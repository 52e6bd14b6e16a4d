package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/store"
)

// gcFixture is a store with live blobs of every kind and garbage: files
// of files/ (live and deleted), two snapshots (the first forgotten), an
// explicit store, a released one.
type gcFixture struct {
	s       *store.Store
	key     store.Key
	live    map[blobstore.Ref][]byte // what must read back: files' and explicit stores' contents
	garbage []blobstore.Ref
	folder  uint64 // the collection folder of photos
}

func newGCFixture(t *testing.T, garbageFiles int) *gcFixture {
	t.Helper()
	ctx := context.Background()
	s, key := newStore(t)
	f := &gcFixture{s: s, key: key, live: map[blobstore.Ref][]byte{}}
	folder, err := s.Meta().CreateCollectionFolder(ctx, "photos", 0o755, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.folder = folder.Ino
	v, _ := s.Volume(ctx, store.DefaultVolume)
	for i := range 3 {
		content := fmt.Sprintf("kept by files/ %d", i)
		f.live[writeContent(t, s, folder.Ino, fmt.Sprint("keep", i), content)] = []byte(content)
	}
	snapped := writeContent(t, s, folder.Ino, "snapped", "only the first snapshot keeps this")
	first, err := s.Snapshot(ctx, "photos", v.ID)
	if err != nil {
		t.Fatal(err)
	}
	removeFile(t, s, folder.Ino, "snapped")
	if _, err := s.Snapshot(ctx, "photos", v.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Forget(ctx, "photos", store.RetentionPolicy{Last: 1}, false); err != nil {
		t.Fatal(err)
	}
	// The forgotten snapshot's file, record and root tree (its index
	// segment is the second's parent).
	f.garbage = append(f.garbage, snapped, first.Record, first.Root)
	for i := range garbageFiles {
		name := fmt.Sprint("drop", i)
		f.garbage = append(f.garbage, writeContent(t, s, folder.Ino, name, fmt.Sprintf("deleted %d %s", i, strings.Repeat("x", 1000*i))))
		removeFile(t, s, folder.Ino, name)
	}
	explicit := []byte("an explicit store")
	f.live[put(t, s, store.DefaultVolume, explicit)] = explicit
	released := put(t, s, store.DefaultVolume, []byte("released"))
	if _, err := s.Release(ctx, released); err != nil {
		t.Fatal(err)
	}
	f.garbage = append(f.garbage, released)
	return f
}

// check holds the store to what a collection promises: every live blob
// reads back byte for byte, no garbage blob is recorded or on the volume
// (but those in kept), a scrub finds nothing, the volume's counts are its
// records', and nothing is left to collect.
func (f *gcFixture) check(t *testing.T, kept map[blobstore.Ref]bool) {
	t.Helper()
	f.checkLive(t, kept)
	v, _ := f.s.Volume(context.Background(), store.DefaultVolume)
	r := findGarbage(t, f.s, 0)
	if r.Garbage != 0 || v.BlobCount != r.Blobs {
		t.Errorf("after the collection: %d garbage of %d records, the volume counts %d blobs", r.Garbage, r.Blobs, v.BlobCount)
	}
}

// checkLive is check without the search for garbage left (which needs
// every volume).
func (f *gcFixture) checkLive(t *testing.T, kept map[blobstore.Ref]bool) {
	t.Helper()
	ctx := context.Background()
	for ref, want := range f.live {
		var got bytes.Buffer
		if err := f.s.Cat(ctx, ref, &got, nil); err != nil || !bytes.Equal(got.Bytes(), want) {
			t.Errorf("live blob %s: %v, %q, want %q", ref, err, got.Bytes(), want)
		}
	}
	for _, ref := range f.garbage {
		if kept[ref] {
			continue
		}
		if _, err := f.s.Stat(ctx, ref); !errors.Is(err, store.ErrNoBlob) {
			t.Errorf("garbage blob %s is still recorded: %v", ref, err)
		}
		if _, err := os.Stat(blobFile(f.s, ref)); err == nil {
			t.Errorf("garbage blob %s is still on the volume", ref)
		}
	}
	v, _ := f.s.Volume(ctx, store.DefaultVolume)
	if sum := f.s.ScrubVolume(ctx, v, store.ScrubOptions{}); sum.Failed() || sum.Orphans != 0 {
		t.Errorf("scrub after the collection: %+v", sum)
	}
	var stored int64
	for ref := range f.live {
		stored += storedSize(t, f.s, ref)
	}
	if v.Bytes < stored {
		t.Errorf("the volume counts %d bytes, less than its live blobs' %d", v.Bytes, stored)
	}
}

func (f *gcFixture) reopen(t *testing.T) {
	t.Helper()
	s, err := store.Open(context.Background(), f.s.Dir(), store.WithKey(f.key))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f.s = s
}

// TestCollectGarbage: a collection removes exactly the garbage, from the
// volume and the metadata, says what it freed (what the dry run said it
// would), and removes a note left on the volume for a garbage blob.
func TestCollectGarbage(t *testing.T) {
	ctx := context.Background()
	f := newGCFixture(t, 4)
	c, _ := f.s.Collection(ctx, store.DefaultCollection)
	released := f.garbage[len(f.garbage)-1]
	v, _ := f.s.Volume(ctx, store.DefaultVolume)
	driver, _ := f.s.Controller().Driver(v.ID)
	note := "explicit/" + c.KeyID + "/" + released.String()
	if err := driver.PutObject(ctx, note, strings.NewReader(released.String()+"\n")); err != nil {
		t.Fatal(err)
	}
	dry := findGarbage(t, f.s, 0)
	var removed []int64
	r, err := f.s.CollectGarbage(ctx, store.GCOptions{Removed: func(_ context.Context, n int64) { removed = append(removed, n) }})
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(f.garbage)); r.Garbage != want || len(r.Freed) != 1 || r.Freed[0] != dry.Volumes[0] || dry.Volumes[0].Blobs != want {
		t.Errorf("CollectGarbage = %+v, freed %+v; want %d garbage, freed as the dry run said: %+v", r, r.Freed, want, dry.Volumes)
	}
	if len(removed) != int(r.Garbage) || removed[len(removed)-1] != r.Garbage {
		t.Errorf("Removed heard %v, want 1..%d", removed, r.Garbage)
	}
	if _, err := driver.GetObject(ctx, note); err == nil {
		t.Errorf("the note %s of a removed blob is still on the volume", note)
	}
	f.check(t, nil)
	if again, err := f.s.CollectGarbage(ctx, store.GCOptions{}); err != nil || again.Garbage != 0 || len(again.Freed) != 0 {
		t.Errorf("a second collection: %+v, %v; want nothing", again, err)
	}
	f.s.Close()
	f.reopen(t)
	if got := f.s.Settled(); !got.Clean {
		t.Errorf("open after a finished collection: %+v, want clean", got)
	}
	f.check(t, nil)
}

// TestCollectGarbageCrash: a collection that dies after k copies are
// removed (the metadata closed as a kill -9 leaves it, nothing more
// dropped from the condemned journal), or after condemning and before
// removing any, is finished by the next Open: everything live reads
// back, the garbage is gone, the scrub is clean.
func TestCollectGarbageCrash(t *testing.T) {
	const garbageFiles, total = 8, 8 + 4 // the files, the forgotten snapshot's file, record and tree, the released blob
	for _, k := range []int{0, 1, 5, total - 1, total} {
		t.Run(fmt.Sprint("after ", k), func(t *testing.T) {
			ctx := context.Background()
			f := newGCFixture(t, garbageFiles)
			if k == 0 {
				// Condemned, and durable, but nothing removed.
				condemned, _, err := f.s.Meta().Condemn(ctx, f.garbage, nil)
				if err != nil || len(condemned) != len(f.garbage) {
					t.Fatalf("Condemn = %d copies, %v", len(condemned), err)
				}
				if err := f.s.Meta().Sync(ctx); err != nil {
					t.Fatal(err)
				}
				if err := store.CloseWithoutSyncForTest(f.s); err != nil {
					t.Fatal(err)
				}
			} else {
				_, err := f.s.CollectGarbage(ctx, store.GCOptions{Removed: func(_ context.Context, n int64) {
					if n == int64(k) {
						store.CloseWithoutSyncForTest(f.s)
					}
				}})
				if err == nil {
					t.Fatalf("the collection went on after its store was closed")
				}
			}
			f.reopen(t)
			if len(f.garbage) != total {
				t.Fatalf("the fixture has %d garbage blobs, want %d", len(f.garbage), total)
			}
			finish := f.s.Settled().Collection
			if finish == nil || finish.Removed != total || finish.Left != "" {
				t.Errorf("the open after the crash finished %+v, want %d copies removed", finish, total)
			}
			f.check(t, nil)
		})
	}
}

// TestCondemnedStoredAgain: a blob stored again (put) after it was
// condemned, whether its copy was removed already or not, is recorded
// again with its copy on the volume, and neither an Open nor a collection
// removes it; scrub finds the condemned copies neither missing nor
// orphans while they wait.
func TestCondemnedStoredAgain(t *testing.T) {
	ctx := context.Background()
	f := newGCFixture(t, 2)
	if _, _, err := f.s.Meta().Condemn(ctx, f.garbage, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Meta().Sync(ctx); err != nil {
		t.Fatal(err)
	}
	v, _ := f.s.Volume(ctx, store.DefaultVolume)
	if sum := f.s.ScrubVolume(ctx, v, store.ScrubOptions{}); sum.Failed() || sum.Orphans != 0 {
		t.Errorf("scrub with copies condemned and not removed: %+v", sum)
	}
	// Of the released blob ("released") and a deleted file's content, one
	// was removed already when the put came, the other not.
	released, dropped := f.garbage[len(f.garbage)-1], f.garbage[3]
	if err := os.Remove(blobFile(f.s, dropped)); err != nil {
		t.Fatal(err)
	}
	droppedContent := []byte("deleted 0 ")
	f.live[put(t, f.s, store.DefaultVolume, []byte("released"))] = []byte("released")
	f.live[put(t, f.s, store.DefaultVolume, droppedContent)] = droppedContent
	if blobstore.RefOf(droppedContent) != dropped {
		t.Fatal("the fixture's content changed")
	}
	for _, ref := range []blobstore.Ref{released, dropped} {
		if condemned, err := f.s.Meta().IsCondemned(ctx, v.ID, ref); err != nil || condemned {
			t.Errorf("blob %s stored again is still condemned: %v, %v", ref, condemned, err)
		}
	}
	if err := store.CloseWithoutSyncForTest(f.s); err != nil {
		t.Fatal(err)
	}
	f.reopen(t)
	kept := map[blobstore.Ref]bool{released: true, dropped: true}
	if finish := f.s.Settled().Collection; finish == nil || finish.Removed != int64(len(f.garbage)-2) {
		t.Errorf("the open finished %+v, want %d copies removed", finish, len(f.garbage)-2)
	}
	f.check(t, kept)
	for ref := range kept {
		if st, err := f.s.Stat(ctx, ref); err != nil || !st.Explicit {
			t.Errorf("blob %s stored again: %+v, %v; want an explicit store", ref, st, err)
		}
	}
	if r, err := f.s.CollectGarbage(ctx, store.GCOptions{}); err != nil || r.Garbage != 0 {
		t.Errorf("a collection after: %+v, %v", r, err)
	}
	f.check(t, kept)
}

// TestCondemnedOnAnUnavailableVolume: an Open that cannot mount a volume
// leaves its condemned copies for later and says so; the next Open with
// the volume back removes them, but not a copy recorded there again.
func TestCondemnedOnAnUnavailableVolume(t *testing.T) {
	ctx := context.Background()
	f := newGCFixture(t, 1)
	dir := filepath.Join(t.TempDir(), "second")
	second, err := f.s.AddVolume(ctx, store.LocalVolume("second", dir))
	if err != nil {
		t.Fatal(err)
	}
	from, _ := f.s.Volume(ctx, store.DefaultVolume)
	if _, err := f.s.Replicate(ctx, from, second, store.ReplicateOptions{Refs: f.garbage}); err != nil {
		t.Fatal(err)
	}
	copies, _, err := f.s.Meta().Condemn(ctx, f.garbage, nil)
	if err != nil || len(copies) != 2*len(f.garbage) {
		t.Fatalf("Condemn = %d copies, %v; want 2 of each", len(copies), err)
	}
	if err := f.s.Meta().Sync(ctx); err != nil {
		t.Fatal(err)
	}
	store.CloseWithoutSyncForTest(f.s)
	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	f.reopen(t)
	finish := f.s.Settled().Collection
	if finish == nil || finish.Removed != int64(len(f.garbage)) || !strings.Contains(finish.Left, "volume second is not mounted") {
		t.Errorf("the open without the second volume finished %+v", finish)
	}
	f.checkLive(t, nil)
	// Stored again on the first volume only: the second's copy is no
	// recorded copy, and goes.
	released := f.garbage[len(f.garbage)-1]
	f.live[put(t, f.s, store.DefaultVolume, []byte("released"))] = []byte("released")
	f.s.Close()
	if err := os.Rename(dir+".away", dir); err != nil {
		t.Fatal(err)
	}
	f.reopen(t)
	if finish := f.s.Settled().Collection; finish == nil || finish.Removed != int64(len(f.garbage)) || finish.Left != "" {
		t.Errorf("the open with the second volume back finished %+v", finish)
	}
	for _, ref := range f.garbage {
		hex := ref.String()
		if _, err := os.Stat(filepath.Join(dir, hex[:3], hex)); err == nil {
			t.Errorf("condemned copy %s is still on the second volume", ref)
		}
	}
	f.check(t, map[blobstore.Ref]bool{released: true})
	if n, _ := f.s.Meta().CondemnedCounts(ctx); len(n) != 0 {
		t.Errorf("condemned entries left: %+v", n)
	}
}

// TestCondemnKeepsLiveBlobs: the metadata keeps, in the condemning
// transaction, an explicit store, a blob a file uses and a blob the
// Keeper holds, and condemns the garbage beside them.
func TestCondemnKeepsLiveBlobs(t *testing.T) {
	ctx := context.Background()
	f := newGCFixture(t, 2)
	heldRef := f.garbage[1]
	keeper := func() (func(blobstore.Ref) bool, error) {
		return func(ref blobstore.Ref) bool { return ref == heldRef }, nil
	}
	for ref := range f.live {
		copies, kept, err := f.s.Meta().Condemn(ctx, []blobstore.Ref{ref, heldRef}, keeper)
		if err != nil || len(copies) != 0 || len(kept) != 2 {
			t.Errorf("Condemn of live blob %s and a held one: %d condemned, kept %v, %v; want both kept", ref, len(copies), kept, err)
		}
	}
	if _, err := f.s.Stat(ctx, heldRef); err != nil {
		t.Errorf("a held blob was condemned: %v", err)
	}
	copies, kept, err := f.s.Meta().Condemn(ctx, f.garbage[:1], keeper)
	if err != nil || len(copies) != 1 || len(kept) != 0 {
		t.Fatalf("Condemn of garbage: %d condemned, kept %v, %v; want 1 condemned", len(copies), kept, err)
	}
	if _, err := f.s.CollectGarbage(ctx, store.GCOptions{}); err != nil {
		t.Fatal(err)
	}
	f.check(t, nil)
}
