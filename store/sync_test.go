package store_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/store"
)

// Blobs written under deferred syncs are journaled until a Sync, and a
// clean Close leaves nothing in the journal.
func TestSyncAndCloseEmptyTheJournal(t *testing.T) {
	ctx := context.Background()
	s, key := newStore(t)
	v, err := s.Volume(ctx, store.DefaultVolume)
	if err != nil {
		t.Fatal(err)
	}
	write := func(content []byte) {
		t.Helper()
		err := s.Controller().WriteBlob(blobstore.WithDeferredSync(ctx), v.ID, store.DefaultCollection,
			blobstore.RefOf(content), bytes.NewReader(content), true)
		if err != nil {
			t.Fatal(err)
		}
	}
	journaled := func() int {
		t.Helper()
		j, err := s.Meta().Journal(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(j.Blobs) + len(j.Contents)
	}
	write(randomBytes(t, 1000))
	if n := journaled(); n != 1 {
		t.Fatalf("%d journal entries after one blob", n)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := journaled(); n != 0 {
		t.Fatalf("%d journal entries after Sync", n)
	}
	write(randomBytes(t, 1000))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = store.Open(ctx, s.Dir(), store.WithKey(key)); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := journaled(); n != 0 {
		t.Errorf("%d journal entries after a clean Close", n)
	}
}
