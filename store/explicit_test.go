package store_test

import (
	"bytes"
	"context"
	"errors"
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
