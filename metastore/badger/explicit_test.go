package badger_test

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/badger"
)

// indexedExplicit returns what the blob index changes of keyID say of
// ref: whether it is listed, and its explicit store.
func indexedExplicit(t *testing.T, store *badger.Store, keyID string, ref blobstore.Ref) (listed, explicit bool) {
	t.Helper()
	err := store.IndexChanges(context.Background(), keyID, func(b badger.IndexedBlob) error {
		if b.Ref == ref {
			listed, explicit = true, b.Explicit
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return listed, explicit
}

func isExplicit(t *testing.T, store *badger.Store, ref blobstore.Ref) bool {
	t.Helper()
	explicit, err := store.IsExplicit(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return explicit
}

// TestExplicitStores: a blob recorded as an explicit store is one, with
// its record, counts and journal entry written in the same transaction; a
// known blob is marked and released; each change marks the blob for the
// index with its new state; it all survives a reopen; an unknown blob is
// fs.ErrNotExist.
func TestExplicitStores(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "meta")
	store, err := badger.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	put := testMeta(blobstore.RefOf([]byte("put")))
	if promoted, err := store.RecordExplicitStore(ctx, put, 1, true); err != nil || promoted {
		t.Fatalf("RecordExplicitStore of a new blob = %v, %v; want not promoted", promoted, err)
	}
	if !isExplicit(t, store, put.Ref) {
		t.Error("a blob recorded as an explicit store is not one")
	}
	if meta, err := store.QueryBlobMetadata(ctx, put.Ref, nil); err != nil || len(meta.Volumes) != 1 || meta.Volumes[0] != 1 {
		t.Errorf("its record: %+v, %v", meta, err)
	}
	if j := journal(t, store); len(j.Blobs) != 1 || j.Blobs[0].Ref != put.Ref || j.Blobs[0].Volume != 1 {
		t.Errorf("journal after an explicit store: %+v; want its blob's copy", j.Blobs)
	}
	if listed, explicit := indexedExplicit(t, store, put.EncryptionKeyId, put.Ref); !listed || !explicit {
		t.Errorf("the index changes list it %v, explicit %v", listed, explicit)
	}

	tree := testMeta(blobstore.RefOf([]byte("tree blob")))
	if err := store.WriteBlobCreated(ctx, tree, 1); err != nil {
		t.Fatal(err)
	}
	if isExplicit(t, store, tree.Ref) {
		t.Error("a blob recorded with WriteBlobCreated is an explicit store")
	}
	if err := store.ClearIndexChanges(ctx, tree.EncryptionKeyId, []badger.IndexMark{{Ref: tree.Ref}}); err != nil {
		t.Fatal(err)
	}
	// Found stored already: marked (promoted), and indexed again.
	if promoted, err := store.RecordExplicitStore(ctx, tree, 1, false); err != nil || !promoted {
		t.Fatalf("RecordExplicitStore of a known blob = %v, %v; want promoted", promoted, err)
	}
	if promoted, err := store.RecordExplicitStore(ctx, tree, 1, false); err != nil || promoted {
		t.Fatalf("RecordExplicitStore of an explicit store = %v, %v; want not promoted", promoted, err)
	}
	if !isExplicit(t, store, tree.Ref) {
		t.Error("a known blob stored explicitly is not marked")
	}
	if listed, explicit := indexedExplicit(t, store, tree.EncryptionKeyId, tree.Ref); !listed || !explicit {
		t.Errorf("after the mark the index changes list it %v, explicit %v", listed, explicit)
	}
	for i, want := range []bool{true, false} {
		released, err := store.ReleaseExplicit(ctx, tree.Ref)
		if err != nil || released != want {
			t.Errorf("release %d = %v, %v; want %v", i+1, released, err, want)
		}
	}
	if listed, explicit := indexedExplicit(t, store, tree.EncryptionKeyId, tree.Ref); !listed || explicit {
		t.Errorf("after the release the index changes list it %v, explicit %v", listed, explicit)
	}

	unknown := blobstore.RefOf([]byte("never stored"))
	if _, err := store.MarkExplicit(ctx, unknown); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("MarkExplicit of an unknown blob: %v", err)
	}
	if _, err := store.ReleaseExplicit(ctx, unknown); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReleaseExplicit of an unknown blob: %v", err)
	}
	if _, err := store.IsExplicit(ctx, unknown); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("IsExplicit of an unknown blob: %v", err)
	}
	if err := store.MarkExplicitBlobs(ctx, []blobstore.Ref{tree.Ref}); err != nil || !isExplicit(t, store, tree.Ref) {
		t.Errorf("MarkExplicitBlobs: %v", err)
	}
	if promoted, err := store.MarkExplicit(ctx, tree.Ref); err != nil || promoted != nil {
		t.Errorf("MarkExplicit of an explicit store = %v, %v; want nil", promoted, err)
	}
	if _, err := store.ReleaseExplicit(ctx, tree.Ref); err != nil {
		t.Fatal(err)
	}
	if promoted, err := store.MarkExplicit(ctx, tree.Ref); err != nil || promoted == nil || promoted.Ref != tree.Ref {
		t.Errorf("MarkExplicit of a released blob = %v, %v; want its metadata", promoted, err)
	}
	if _, err := store.ReleaseExplicit(ctx, tree.Ref); err != nil {
		t.Fatal(err)
	}

	store.Close()
	store, err = badger.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if !isExplicit(t, store, put.Ref) || isExplicit(t, store, tree.Ref) {
		t.Error("explicit stores changed across a reopen")
	}
}

// TestExplicitStoresMigration: a store made before explicit stores were
// kept has every blob it holds marked when it is opened, once.
func TestExplicitStoresMigration(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "meta")
	store, err := badger.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	old := testMeta(blobstore.RefOf([]byte("stored long ago")))
	if err := store.WriteBlobCreated(ctx, old, 1); err != nil {
		t.Fatal(err)
	}
	if err := badger.UnmarkExplicitForTest(store); err != nil {
		t.Fatal(err)
	}
	store.Close()
	store, err = badger.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !isExplicit(t, store, old.Ref) {
		t.Error("a blob of an old store is not an explicit store after the migration")
	}
	if _, err := store.ReleaseExplicit(ctx, old.Ref); err != nil {
		t.Fatal(err)
	}
	store.Close()
	store, err = badger.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if isExplicit(t, store, old.Ref) {
		t.Error("the migration ran again and marked a released blob")
	}
}
