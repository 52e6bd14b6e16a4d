package badger_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/diskaccess/diskaccesstest"
	"github.com/stofuse/stofuse/keyring"
	"github.com/stofuse/stofuse/metastore/badger"
)

// newStore opens a fresh store, initialized with a key-file KEK and holding
// one collection, "default".
func newStore(t testing.TB) (*badger.Store, *keyring.KEK, string) {
	t.Helper()
	dir := t.TempDir()
	store, err := badger.Open(filepath.Join(dir, "meta"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	keyPath := filepath.Join(dir, "key")
	kek, err := keyring.GenerateKeyFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := store.Initialize(ctx, kek, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateCollection(ctx, "default"); err != nil {
		t.Fatal(err)
	}
	return store, kek, keyPath
}

// openDir opens a new store in a directory of its own, sealed for a new
// key (initialize), and returns it with its metadata directory, for tests
// that reopen it (reopen).
func openDir(t *testing.T) (*badger.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "meta")
	store, err := badger.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	initialize(t, store)
	return store, dir
}

// reopen closes store and opens dir again; the store it returns is closed
// when the test ends.
func reopen(t *testing.T, store *badger.Store, dir string) *badger.Store {
	t.Helper()
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	store, err := badger.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// initialize seals a fresh store for a new key-file KEK and returns it.
func initialize(t *testing.T, store *badger.Store) *keyring.KEK {
	t.Helper()
	kek, err := keyring.GenerateKeyFile(filepath.Join(t.TempDir(), "key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Initialize(context.Background(), kek, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateCollection(context.Background(), "default"); err != nil {
		t.Fatal(err)
	}
	return kek
}

func TestControllerWithBadgerStore(t *testing.T) {
	diskaccesstest.RunControllerTests(t, func(t *testing.T) diskaccesstest.Env {
		store, _, _ := newStore(t)
		return diskaccesstest.Env{Store: store, Keys: store.Ring(), CollId: "default"}
	})
}

func testMeta(ref blobstore.Ref) *diskaccess.BlobMeta {
	return &diskaccess.BlobMeta{
		Ref: ref, RealSize: 1 << 40, SizeOnDisk: 1<<40 + 89, IsCompressed: true,
		EncryptionKeyId: "dek-0011223344556677", ExpectedCrc32: []byte{1, 2, 3, 4},
		Created: time.Date(2026, 11, 25, 1, 2, 3, 4, time.UTC),
	}
}

func TestBlobMetadataSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "meta")
	store, err := badger.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ref := blobstore.RefOf([]byte("x"))
	if err := store.WriteBlobCreated(ctx, testMeta(ref), 3); err != nil {
		t.Fatal(err)
	}
	if err := store.WriteBlobReplicated(ctx, ref, 5); err != nil {
		t.Fatal(err)
	}
	if err := store.WriteBlobReplicated(ctx, ref, 5); err != nil {
		t.Fatal(err)
	}
	if err := store.SetBlobMtime(ctx, ref, 1234567890); err != nil {
		t.Fatal(err)
	}
	store.Close()

	store, err = badger.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	meta, mtime, err := store.BlobRecord(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	want := testMeta(ref)
	want.Volumes = []int{3, 5}
	if meta.RealSize != want.RealSize || meta.SizeOnDisk != want.SizeOnDisk || !meta.IsCompressed ||
		meta.EncryptionKeyId != want.EncryptionKeyId || !bytes.Equal(meta.ExpectedCrc32, want.ExpectedCrc32) ||
		!meta.Created.Equal(want.Created) || len(meta.Volumes) != 2 || meta.Volumes[1] != 5 || mtime != 1234567890 {
		t.Fatalf("after reopen: %+v mtime %d; want %+v mtime 1234567890", meta, mtime, want)
	}
	if err := store.WriteBlobCreated(ctx, testMeta(ref), 3); err == nil {
		t.Fatal("WriteBlobCreated of a known blob succeeded")
	}
	if _, err := store.QueryBlobCrc32(ctx, blobstore.RefOf([]byte("y"))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("QueryBlobCrc32 of an unknown blob: %v", err)
	}
}

func TestVolumeCountsAndListing(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	v, err := store.AddVolume(ctx, badger.Volume{Label: "disk", UUID: "u-1", Driver: "localfs", Settings: map[string]string{"path": "/x"}})
	if err != nil || v.ID != 1 {
		t.Fatalf("AddVolume = %+v, %v", v, err)
	}
	if _, err := store.AddVolume(ctx, badger.Volume{Label: "disk", UUID: "u-2", Driver: "localfs"}); !errors.Is(err, badger.ErrVolumeExists) {
		t.Fatalf("second volume with the same label: %v", err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		ref := blobstore.RefOf([]byte{byte(i)})
		wg.Go(func() {
			if err := store.WriteBlobCreated(ctx, testMeta(ref), 1); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := store.Volume(ctx, "disk")
	if err != nil || got.BlobCount != 20 || got.Bytes != 20*(1<<40+89) {
		t.Fatalf("after 20 concurrent blobs: %+v, %v", got, err)
	}
	var listed []blobstore.Ref
	err = store.ListVolumeBlobs(ctx, 1, blobstore.Ref{}, func(r blobstore.Ref) error {
		listed = append(listed, r)
		return nil
	})
	if err != nil || len(listed) != 20 {
		t.Fatalf("ListVolumeBlobs listed %d, %v", len(listed), err)
	}
	for i := 1; i < len(listed); i++ {
		if listed[i-1].Compare(listed[i]) >= 0 {
			t.Fatal("ListVolumeBlobs is not in ref order")
		}
	}
	var rest []blobstore.Ref
	store.ListVolumeBlobs(ctx, 1, listed[9], func(r blobstore.Ref) error { rest = append(rest, r); return nil })
	if len(rest) != 10 || rest[0] != listed[10] {
		t.Fatalf("listing after the 10th ref gave %d refs", len(rest))
	}
}

// TestListBlobs: every recorded blob once, in ref order, whatever the
// volumes holding it; after a ref; and with a volume filter, only those
// with a copy on a volume it accepts.
func TestListBlobs(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	for _, label := range []string{"one", "two"} {
		if _, err := store.AddVolume(ctx, badger.Volume{Label: label, UUID: "u-" + label, Driver: "localfs"}); err != nil {
			t.Fatal(err)
		}
	}
	onTwo := map[blobstore.Ref]bool{}
	for i := range 12 {
		ref := blobstore.RefOf([]byte{byte(i)})
		volume := 1 + i%3/2 // 1, 1, 2, ...
		if err := store.WriteBlobCreated(ctx, testMeta(ref), volume); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 { // on both
			if err := store.WriteBlobReplicated(ctx, ref, 2); err != nil {
				t.Fatal(err)
			}
		}
		if volume == 2 || i%3 == 0 {
			onTwo[ref] = true
		}
	}
	list := func(after blobstore.Ref, visible func(int) bool) []blobstore.Ref {
		var refs []blobstore.Ref
		if err := store.ListBlobs(ctx, after, visible, func(r blobstore.Ref) error { refs = append(refs, r); return nil }); err != nil {
			t.Fatal(err)
		}
		return refs
	}
	all := list(blobstore.Ref{}, nil)
	if len(all) != 12 || !slices.IsSortedFunc(all, blobstore.Ref.Compare) || len(slices.Compact(slices.Clone(all))) != 12 {
		t.Fatalf("ListBlobs listed %d refs (want 12, sorted, each once): %v", len(all), all)
	}
	if rest := list(all[4], nil); !slices.Equal(rest, all[5:]) {
		t.Errorf("ListBlobs after the 5th ref: %d refs, want the 7 after it", len(rest))
	}
	var want []blobstore.Ref
	for _, ref := range all {
		if onTwo[ref] {
			want = append(want, ref)
		}
	}
	if got := list(blobstore.Ref{}, func(v int) bool { return v == 2 }); !slices.Equal(got, want) {
		t.Errorf("ListBlobs of the blobs with a copy on volume 2: %v, want %v", got, want)
	}
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	store, kek, _ := newStore(t)
	coll, err := store.Collection(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	dek, err := store.Ring().DataKey(coll.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	params, _ := keyring.NewKDFParams()
	params.MemoryKiB, params.Time = 64, 1
	second, _ := keyring.FromPassphrase([]byte("second"), params)
	if err := store.AddKEK(ctx, second, &params); err != nil {
		t.Fatal(err)
	}
	// A collection made after the second KEK was added opens with both.
	photos, err := store.CreateCollection(ctx, "photos")
	if err != nil {
		t.Fatal(err)
	}
	infos, _ := store.KEKs(ctx)
	if len(infos) != 2 || infos[0].ID != kek.ID() || infos[1].Kind != keyring.KindPassphrase {
		t.Fatalf("KEKs = %+v", infos)
	}
	for _, k := range []*keyring.KEK{kek, second} {
		if err := store.Unlock(ctx, k); err != nil {
			t.Fatalf("Unlock with the %s: %v", k.Kind(), err)
		}
		got, err := store.Ring().DataKey(coll.KeyID)
		if err != nil || !bytes.Equal(got, dek) {
			t.Fatalf("the %s opened a different data key: %v", k.Kind(), err)
		}
		if _, err := store.Ring().DataKey(photos.KeyID); err != nil {
			t.Fatalf("the %s does not open a newer collection: %v", k.Kind(), err)
		}
	}
	stored, _ := store.KDFParams(ctx)
	if stored == nil || !bytes.Equal(stored.Salt, params.Salt) {
		t.Fatal("argon2id parameters not stored")
	}
	wrong, _ := keyring.FromPassphrase([]byte("wrong"), params)
	if err := store.Unlock(ctx, wrong); !errors.Is(err, keyring.ErrWrongKey) {
		t.Fatalf("Unlock with a wrong passphrase: %v, want ErrWrongKey", err)
	}
	if _, err := store.CreateCollection(ctx, "photos"); !errors.Is(err, badger.ErrCollectionExists) {
		t.Fatalf("second collection named photos: %v", err)
	}
}

// TestNoKeyInPlaintext writes blobs and collections, closes the store, and
// scans every byte of every file under it for the root key, the data keys
// and the KEKs: none may appear.
func TestNoKeyInPlaintext(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := badger.Open(filepath.Join(dir, "meta"))
	if err != nil {
		t.Fatal(err)
	}
	kekPath := filepath.Join(t.TempDir(), "key") // outside the scanned dir
	kek, _ := keyring.GenerateKeyFile(kekPath)
	if err := store.Initialize(ctx, kek, nil); err != nil {
		t.Fatal(err)
	}
	var secrets [][]byte
	for _, name := range []string{"default", "photos", "docs"} {
		c, err := store.CreateCollection(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		dek, _ := store.Ring().DataKey(c.KeyID)
		secrets = append(secrets, dek)
	}
	for i := range 100 {
		store.WriteBlobCreated(ctx, testMeta(blobstore.RefOf([]byte{byte(i)})), 1)
	}
	rawKEK, _ := os.ReadFile(kekPath)
	secrets = append(secrets, rawKEK, badger.RootKeyForTest(store))
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	scanned := 0
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		scanned += len(body)
		for i, secret := range secrets {
			if bytes.Contains(body, secret) {
				t.Errorf("secret %d found in plaintext in %s", i, path)
			}
		}
		return nil
	})
	if scanned == 0 {
		t.Fatal("scanned nothing")
	}
	t.Logf("scanned %d bytes for %d secrets", scanned, len(secrets))
}

func TestSecondOpenIsBusy(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "meta")
	store, err := badger.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := badger.Open(dir); !errors.Is(err, badger.ErrStoreBusy) {
		t.Fatalf("second Open: %v, want ErrStoreBusy", err)
	}
}
