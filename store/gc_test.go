package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/store"
)

// writeContent makes file name in parent with content stored as files/
// stores it: not an explicit store.
func writeContent(t *testing.T, s *store.Store, parent uint64, name, content string) blobstore.Ref {
	t.Helper()
	ctx := context.Background()
	v, _ := s.Volume(ctx, store.DefaultVolume)
	ref := blobstore.RefOf([]byte(content))
	if err := s.Controller().WriteBlob(ctx, v.ID, "photos", ref, strings.NewReader(content), true); err != nil {
		t.Fatal(err)
	}
	n, err := s.Meta().Create(ctx, parent, name, &badger.Inode{Kind: badger.KindFile, Mode: 0o644, Mtime: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Meta().CommitContent(ctx, n.Ino, ref, int64(len(content)), 100, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	return ref
}

func removeFile(t *testing.T, s *store.Store, parent uint64, name string) {
	t.Helper()
	if _, err := s.Meta().Remove(context.Background(), parent, name, false); err != nil {
		t.Fatal(err)
	}
}

func storedSize(t *testing.T, s *store.Store, refs ...blobstore.Ref) int64 {
	t.Helper()
	var total int64
	for _, ref := range refs {
		st, err := s.Stat(context.Background(), ref)
		if err != nil {
			t.Fatal(err)
		}
		total += st.Stored
	}
	return total
}

func findGarbage(t *testing.T, s *store.Store, grace time.Duration) *store.GarbageReport {
	t.Helper()
	r, err := s.FindGarbage(context.Background(), store.GCOptions{Grace: grace})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestFindGarbage: what a file uses, a retained snapshot uses (its
// record, index segments and trees too), an explicit store and a young
// blob are live; a deleted file's content, a released blob and what only
// a forgotten snapshot used are garbage, counted per volume; a snapshot
// that cannot be read stops the search.
func TestFindGarbage(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	folder, err := s.Meta().CreateCollectionFolder(ctx, "photos", 0o755, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := s.Volume(ctx, store.DefaultVolume)
	writeContent(t, s, folder.Ino, "a", "kept by files/")
	writeContent(t, s, folder.Ino, "b", "kept by the first snapshot")
	c := writeContent(t, s, folder.Ino, "c", "deleted before any snapshot")
	removeFile(t, s, folder.Ino, "c")
	first, err := s.Snapshot(ctx, "photos", v.ID)
	if err != nil {
		t.Fatal(err)
	}
	removeFile(t, s, folder.Ino, "b")
	writeContent(t, s, folder.Ino, "d", "kept by files/ too")
	second, err := s.Snapshot(ctx, "photos", v.ID)
	if err != nil {
		t.Fatal(err)
	}
	e := writeContent(t, s, folder.Ino, "e", "deleted after the last snapshot")
	removeFile(t, s, folder.Ino, "e")
	put(t, s, store.DefaultVolume, []byte("an explicit store"))
	released := put(t, s, store.DefaultVolume, []byte("released"))
	if _, err := s.Release(ctx, released); err != nil {
		t.Fatal(err)
	}

	got := findGarbage(t, s, 0)
	// Snapshots: b, and each snapshot's root tree, record and segment.
	want := store.LiveCounts{Files: 2, Snapshots: 7, Explicit: 1}
	if got.Live != want || got.Garbage != 3 || got.Blobs != 13 || got.Snapshots != 2 || got.Trees != 2 {
		t.Errorf("FindGarbage = %+v, want live %+v, 3 garbage of 13, 2 snapshots and 2 trees", got, want)
	}
	wantBytes := storedSize(t, s, c, e, released)
	if len(got.Volumes) != 1 || got.Volumes[0] != (store.VolumeGarbage{Volume: "default", Blobs: 3, Bytes: wantBytes}) {
		t.Errorf("garbage per volume: %+v, want 3 blobs, %d bytes on default", got.Volumes, wantBytes)
	}
	if young := findGarbage(t, s, time.Hour); young.Garbage != 0 || young.Live.Young != 3 || len(young.Volumes) != 0 {
		t.Errorf("with an hour's grace: %+v, want the 3 kept as young", young)
	}

	// Forgotten, the first snapshot keeps nothing: b, its tree and its
	// record are garbage; its index segment is the second's parent.
	if _, err := s.Forget(ctx, "photos", store.RetentionPolicy{Last: 1}, false); err != nil {
		t.Fatal(err)
	}
	got = findGarbage(t, s, 0)
	if got.Garbage != 6 || got.Live.Snapshots != 4 || got.Snapshots != 1 {
		t.Errorf("after forgetting the first snapshot: %+v, want 6 garbage and 4 kept by the second", got)
	}
	if want := wantBytes + storedSize(t, s, first.Root, first.Record, blobstore.RefOf([]byte("kept by the first snapshot"))); got.Volumes[0].Bytes != want {
		t.Errorf("after forget, %d bytes of garbage, want %d", got.Volumes[0].Bytes, want)
	}

	// The retained snapshot's tree is damaged: the search stops, naming it.
	flipByte(t, blobFile(s, second.Root), 60)
	if _, err := s.FindGarbage(ctx, store.GCOptions{}); err == nil || !strings.Contains(err.Error(), "snapshot "+second.Name+" of photos cannot be read") {
		t.Errorf("FindGarbage with a damaged snapshot: %v", err)
	}
	if _, err := s.FindGarbage(ctx, store.GCOptions{Grace: -time.Second}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("a negative grace: %v", err)
	}
}

// TestFindGarbageNeedsTheKeys: tree blobs are sealed, so a store opened
// without a key cannot tell what its snapshots keep.
func TestFindGarbageNeedsTheKeys(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	dir := s.Dir()
	s.Close()
	locked, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer locked.Close()
	if _, err := locked.FindGarbage(ctx, store.GCOptions{}); !errors.Is(err, store.ErrLocked) {
		t.Errorf("FindGarbage without a key: %v", err)
	}
}
