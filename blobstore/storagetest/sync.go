package storagetest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
)

// syncTests are the conformance tests of deferred syncs. A test cannot
// pull the power, so they check what can be seen: deferred stores are
// visible and whole at once, Sync succeeds, and everything is still there.
var syncTests = []struct {
	name string
	fn   func(t *testing.T, d blobstore.Driver)
}{
	{"DeferredSyncReadableAtOnce", testDeferredSyncReadable},
	{"DeferredSyncFailedStoreLeavesNothing", testDeferredSyncFailedStore},
	{"SyncWithNothingDeferred", testSyncWithNothingDeferred},
	{"DeferredRemoveGoneAtOnce", testDeferredRemove},
}

// testDeferredRemove: blobs removed under WithDeferredSync (many: a
// driver may sync them in bulk) are gone at once for Stat, RawFetch and
// List, a second Remove reports them missing, and after Sync they are
// still gone and the others still there.
func testDeferredRemove(t *testing.T, d blobstore.Driver) {
	ctx := blobstore.WithDeferredSync(context.Background())
	for i := range 40 {
		store(t, d, testRef(i), randomBytes(uint64(50+i), 100+i))
	}
	for i := 0; i < 40; i += 2 {
		if err := d.Remove(ctx, testRef(i)); err != nil {
			t.Fatalf("Remove with deferred sync: %v", err)
		}
	}
	check := func(when string) {
		t.Helper()
		for i := range 40 {
			_, err := d.Stat(context.Background(), testRef(i))
			if i%2 == 0 {
				assertNotExist(t, when+": Stat of a removed blob", err)
			} else {
				assertContent(t, d, testRef(i), randomBytes(uint64(50+i), 100+i))
			}
		}
		if refs, _ := listAll(t, d); len(refs) != 20 {
			t.Fatalf("%s: List shows %d blobs, want 20", when, len(refs))
		}
	}
	check("before Sync")
	assertNotExist(t, "second deferred Remove", d.Remove(ctx, testRef(0)))
	if err := d.Sync(context.Background()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	check("after Sync")
}

func testDeferredSyncReadable(t *testing.T, d blobstore.Driver) {
	ctx := blobstore.WithDeferredSync(context.Background())
	store(t, d, testRef(0), []byte("stored durably before"))
	want := map[blobstore.Ref][]byte{testRef(0): randomBytes(30, 1000)}
	for i := 1; i <= 5; i++ {
		want[testRef(i)] = randomBytes(uint64(30+i), 1000*i)
	}
	for ref, content := range want {
		if err := d.RawStore(ctx, ref, bytes.NewReader(content)); err != nil {
			t.Fatalf("RawStore with deferred sync: %v", err)
		}
	}
	if err := d.PutObject(ctx, "deferred/object", bytes.NewReader([]byte("named"))); err != nil {
		t.Fatalf("PutObject with deferred sync: %v", err)
	}
	if err := d.Remove(context.Background(), testRef(5)); err != nil {
		t.Fatalf("Remove of a blob stored with deferred sync: %v", err)
	}
	delete(want, testRef(5))
	check := func(when string) {
		t.Helper()
		for ref, content := range want {
			assertContent(t, d, ref, content)
		}
		if refs, _ := listAll(t, d); len(refs) != len(want) {
			t.Fatalf("%s: List shows %d blobs, want %d", when, len(refs), len(want))
		}
		if got := getObject(t, d, "deferred/object"); string(got) != "named" {
			t.Fatalf("%s: GetObject = %q", when, got)
		}
	}
	check("before Sync")
	if err := d.Sync(context.Background()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	check("after Sync")
	if err := d.Sync(context.Background()); err != nil {
		t.Fatalf("second Sync: %v", err)
	}
}

func testDeferredSyncFailedStore(t *testing.T, d blobstore.Driver) {
	ctx := blobstore.WithDeferredSync(context.Background())
	err := d.RawStore(ctx, testRef(1), newFailingReader(randomBytes(40, 100_000)))
	if !errors.Is(err, errInjected) {
		t.Fatalf("deferred RawStore with a failing reader: err = %v, want the reader's error", err)
	}
	if err := d.Sync(context.Background()); err != nil {
		t.Fatalf("Sync after a failed store: %v", err)
	}
	_, err = d.Stat(context.Background(), testRef(1))
	assertNotExist(t, "Stat after a failed deferred RawStore", err)
}

func testSyncWithNothingDeferred(t *testing.T, d blobstore.Driver) {
	if err := d.Sync(context.Background()); err != nil {
		t.Fatalf("Sync of an empty volume: %v", err)
	}
	store(t, d, testRef(1), []byte("durable at return"))
	if err := d.Sync(context.Background()); err != nil {
		t.Fatalf("Sync with nothing deferred: %v", err)
	}
	assertContent(t, d, testRef(1), []byte("durable at return"))
}
