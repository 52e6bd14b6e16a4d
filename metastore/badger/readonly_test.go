package badger_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/badger"
)

func writeBlobs(t *testing.T, store *badger.Store, n int) []blobstore.Ref {
	t.Helper()
	var refs []blobstore.Ref
	for i := range n {
		ref := blobstore.RefOf([]byte{byte(i), 9})
		if err := store.WriteBlobCreated(context.Background(), testMeta(ref), 1); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	return refs
}

func checkBlobs(t *testing.T, store *badger.Store, refs []blobstore.Ref) {
	t.Helper()
	for _, ref := range refs {
		if _, _, err := store.BlobRecord(context.Background(), ref); err != nil {
			t.Fatalf("blob %s: %v", ref, err)
		}
	}
}

func sameFiles(t *testing.T, before, after map[string][32]byte) {
	t.Helper()
	if len(after) != len(before) {
		t.Errorf("the directory had %d files, has %d", len(before), len(after))
	}
	for name, sum := range before {
		if after[name] != sum {
			t.Errorf("%s changed", name)
		}
	}
}

// TestOpenReadOnly: a cleanly closed store opens read-only from its own
// directory, which it leaves byte for byte as it was (no LOCK file);
// writes are ErrReadOnly; other read-only opens may share it, a writable
// one may not.
func TestOpenReadOnly(t *testing.T) {
	store, _, _ := newStore(t)
	refs := writeBlobs(t, store, 50)
	if err := store.Commit(context.Background(), nil); err != nil { // a clean stop: nothing journaled
		t.Fatal(err)
	}
	dir := store.Dir()
	store.Close()
	before := hashes(t, dir)
	scratch := t.TempDir()

	ro, err := badger.OpenReadOnly(dir, scratch)
	if err != nil {
		t.Fatal(err)
	}
	if !ro.ReadOnly() || ro.PrivateCopy() != "" {
		t.Fatalf("ReadOnly %v, PrivateCopy %q: want a read-only open of the directory itself", ro.ReadOnly(), ro.PrivateCopy())
	}
	checkBlobs(t, ro, refs)
	ref := blobstore.RefOf([]byte("new"))
	if err := ro.WriteBlobCreated(context.Background(), testMeta(ref), 1); !errors.Is(err, badger.ErrReadOnly) {
		t.Errorf("a write to a read-only store: %v, want ErrReadOnly", err)
	}
	second, err := badger.OpenReadOnly(dir, scratch)
	if err != nil {
		t.Errorf("a second read-only open: %v", err)
	} else {
		second.Close()
	}
	if rw, err := badger.Open(dir); !errors.Is(err, badger.ErrStoreBusy) {
		if err == nil {
			rw.Close()
		}
		t.Errorf("a writable open beside a read-only one: %v, want ErrStoreBusy", err)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, before, hashes(t, dir))
}

// TestOpenReadOnlyAfterACrash: a store left by a crash (a memtable log
// that Badger's read-only mode refuses, journal entries to settle) opens
// read-only from a private copy in the scratch directory, with every
// committed record; the store's own directory is unchanged, and Close
// removes the copy.
func TestOpenReadOnlyAfterACrash(t *testing.T) {
	store, _, _ := newStore(t)
	refs := writeBlobs(t, store, 50)
	dir := badger.CrashCopy(t, store.Dir())
	if logs, _ := filepath.Glob(filepath.Join(dir, "*.mem")); len(logs) == 0 {
		t.Fatal("no memtable log in the copy of an open store")
	}
	before := hashes(t, dir)
	scratch := t.TempDir()
	// What a read-only open killed before its Close leaves.
	abandoned := filepath.Join(scratch, "stofuse-meta-killed")
	os.Mkdir(abandoned, 0o700)
	os.WriteFile(filepath.Join(abandoned, "stofuse-in-use"), nil, 0o600)

	ro, err := badger.OpenReadOnly(dir, scratch)
	if err != nil {
		t.Fatal(err)
	}
	if !ro.ReadOnly() || filepath.Dir(ro.PrivateCopy()) != scratch {
		t.Fatalf("ReadOnly %v, PrivateCopy %q: want a private copy under %s", ro.ReadOnly(), ro.PrivateCopy(), scratch)
	}
	if _, err := os.Stat(abandoned); err == nil {
		t.Error("an abandoned private copy was not swept")
	}
	checkBlobs(t, ro, refs)
	second, err := badger.OpenReadOnly(dir, scratch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ro.PrivateCopy()); err != nil {
		t.Errorf("a second open swept the private copy in use: %v", err)
	}
	checkBlobs(t, second, refs)
	second.Close()
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, before, hashes(t, dir))
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("left in the scratch directory: %v", left)
	}
}

// TestOpenReadOnlyWithAJournal: a store closed with journal entries left
// (its last group commit failed, say) needs them settled before it is
// read: it opens read-only from a private copy, and its directory stays
// unchanged.
func TestOpenReadOnlyWithAJournal(t *testing.T) {
	store, _, _ := newStore(t)
	refs := writeBlobs(t, store, 5) // journaled, never committed
	dir := store.Dir()
	store.Close()
	if logs, _ := filepath.Glob(filepath.Join(dir, "*.mem")); len(logs) != 0 {
		t.Fatalf("a closed store has memtable logs: %v", logs)
	}
	before := hashes(t, dir)
	ro, err := badger.OpenReadOnly(dir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if ro.PrivateCopy() == "" {
		t.Error("a store with journal entries opened read-only without a private copy: they cannot be settled")
	}
	if j, err := ro.Journal(context.Background()); err != nil || len(j.Blobs) != len(refs) {
		t.Errorf("the private copy's journal: %v, %v; want the %d entries", j, err, len(refs))
	}
	checkBlobs(t, ro, refs)
	ro.Close()
	sameFiles(t, before, hashes(t, dir))
}
