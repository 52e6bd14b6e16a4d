package store_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/store"
)

func explicitIn(t *testing.T, s *store.Store, ref blobstore.Ref) bool {
	t.Helper()
	st, err := s.Stat(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return st.Explicit
}

// TestExplicitStores: put makes a blob an explicit store, also one that
// was stored already as something else; release ends it; and a recovery
// from the volume brings back what the blob index says, keeping as
// explicit stores the blobs it cannot say anything of.
func TestExplicitStores(t *testing.T) {
	ctx := context.Background()
	s, key := newStore(t)
	folder := tree(t, s)[""].Ino // its files' content is put: explicit stores
	v, _ := s.Volume(ctx, store.DefaultVolume)

	// Stored as a blob that is not an explicit store (as a tree blob or a
	// file's content is), then put.
	known := []byte("stored before, then put")
	knownRef := blobstore.RefOf(known)
	if err := s.Controller().WriteBlob(ctx, v.ID, "photos", knownRef, bytes.NewReader(known), true); err != nil {
		t.Fatal(err)
	}
	if explicitIn(t, s, knownRef) {
		t.Fatal("a blob written with WriteBlob is an explicit store")
	}
	put(t, s, store.DefaultVolume, known)
	if !explicitIn(t, s, knownRef) {
		t.Error("a put of a blob stored already did not make it an explicit store")
	}
	released, _, err := s.Put(ctx, v.ID, "photos", bytes.NewReader([]byte("put, then released")), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		if got, err := s.Release(ctx, released); err != nil || got != want {
			t.Errorf("release %d = %v, %v; want %v", i+1, got, err, want)
		}
	}
	if explicitIn(t, s, released) {
		t.Error("a released blob is still an explicit store")
	}
	if _, err := s.Release(ctx, blobstore.RefOf([]byte("never stored"))); !errors.Is(err, store.ErrNoBlob) {
		t.Errorf("release of an unknown blob: %v", err)
	}
	// A snapshot of photos writes the index of the blobs sealed with its
	// key, explicit stores and all; late (put in default, which has no
	// snapshot) is in no index.
	snap := changeAndSnapshot(t, s, folder, 1)
	late := put(t, s, store.DefaultVolume, []byte("put after the last snapshot"))
	s.Close()

	r, report, err := store.Recover(ctx, t.TempDir(), store.LocalVolume("default", filepath.Join(s.Dir(), "volumes", "default")), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !report.Complete() {
		t.Fatalf("recover: %+v", report)
	}
	for _, c := range []struct {
		what string
		ref  blobstore.Ref
		want bool
	}{
		{"a put blob", knownRef, true},
		{"a released blob", released, false},
		{"the root tree", snap.Root, false},
		{"a blob no index lists", late, true},
	} {
		if got := explicitIn(t, r, c.ref); got != c.want {
			t.Errorf("after the recovery, %s is an explicit store: %v, want %v", c.what, got, c.want)
		}
	}
	// The explicit stores: the 12 files' blobs the tree put, version 1 of
	// f0, known and late. The snapshot's record and index segment, in no
	// index, are recognized as the snapshot's, not explicit stores.
	if report.Explicit != 15 {
		t.Errorf("the report counts %d explicit stores, want 15", report.Explicit)
	}
}

// hasNote reports whether volume holds the explicit-store note of ref.
func hasNote(t *testing.T, s *store.Store, volume string, keyID string, ref blobstore.Ref) bool {
	t.Helper()
	ctx := context.Background()
	v, err := s.Volume(ctx, volume)
	if err != nil {
		t.Fatal(err)
	}
	driver, err := s.Controller().Driver(v.ID)
	if err != nil {
		t.Fatal(err)
	}
	r, err := driver.GetObject(ctx, "explicit/"+keyID+"/"+ref.String())
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	return true
}

// TestExplicitStoreNotes: a blob an index lists as no explicit store,
// then put after that index, is noted on its volumes at once (a replicate
// copies the note), so that a recovery from either volume keeps it as an
// explicit store; a release removes the notes, and so does a snapshot
// whose index holds the blob as an explicit store.
func TestExplicitStoreNotes(t *testing.T) {
	ctx := context.Background()
	s, key := newStore(t)
	folder, err := s.Meta().CreateCollectionFolder(ctx, "photos", 0o755, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.Collection(ctx, "photos")
	v1, _ := s.Volume(ctx, store.DefaultVolume)
	content := "a file's content, indexed, then put"
	ref := writeContent(t, s, folder.Ino, "f", content)
	if _, err := s.Snapshot(ctx, "photos", v1.ID); err != nil {
		t.Fatal(err)
	}
	if hasNote(t, s, store.DefaultVolume, c.KeyID, ref) {
		t.Fatal("a note before any put")
	}
	if _, _, err := s.Put(ctx, v1.ID, "photos", bytes.NewReader([]byte(content)), nil); err != nil {
		t.Fatal(err)
	}
	if !hasNote(t, s, store.DefaultVolume, c.KeyID, ref) {
		t.Fatal("a put of an indexed blob wrote no note")
	}
	replica := t.TempDir()
	v2, err := s.AddVolume(ctx, store.LocalVolume("replica", replica))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Replicate(ctx, v1, v2, store.ReplicateOptions{}); err != nil {
		t.Fatal(err)
	}
	if !hasNote(t, s, "replica", c.KeyID, ref) {
		t.Error("replicate did not copy the note")
	}
	dir := s.Dir()
	s.Close()
	for _, from := range []string{filepath.Join(dir, "volumes", "default"), replica} {
		r, _, err := store.Recover(ctx, t.TempDir(), store.LocalVolume("default", from), key, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !explicitIn(t, r, ref) {
			t.Errorf("recovered from %s, the put blob is not an explicit store", from)
		}
		r.Close()
	}

	s, err = store.Open(ctx, dir, store.WithKey(key))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Release(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if hasNote(t, s, store.DefaultVolume, c.KeyID, ref) || hasNote(t, s, "replica", c.KeyID, ref) {
		t.Error("a release left a note")
	}
	// Put again, then a snapshot of a changed tree: its index says so,
	// and the note goes.
	if err := s.MarkExplicit(ctx, ref); err != nil || !hasNote(t, s, store.DefaultVolume, c.KeyID, ref) {
		t.Fatalf("MarkExplicit of a released blob: %v, or no note", err)
	}
	writeContent(t, s, folder.Ino, "g", "a change")
	if _, err := s.Snapshot(ctx, "photos", v1.ID); err != nil {
		t.Fatal(err)
	}
	if hasNote(t, s, store.DefaultVolume, c.KeyID, ref) {
		t.Error("the note is still there after an index that holds the explicit store")
	}
	if !hasNote(t, s, "replica", c.KeyID, ref) {
		t.Error("the replica's note went with a snapshot on another volume")
	}
}
