package storagetest

import (
	"context"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
)

// stageTests are the conformance tests of staged stores (blobstore.Stage:
// the driver's own Stager, or the spooling one for a driver without it).
var stageTests = []struct {
	name string
	fn   func(t *testing.T, d blobstore.Driver)
}{
	{"StagedInvisibleUntilPublished", testStagedInvisible},
	{"StagedDiscardKeepsOld", testStagedDiscardKeepsOld},
	{"StagedLarge", testStagedLarge},
	{"StagedFinishedOnce", testStagedFinishedOnce},
}

// stage writes content to a new StagedBlob of ref, in pieces of 1000
// bytes, as a sealer hands frames over.
func stage(t *testing.T, d blobstore.Driver, ref blobstore.Ref, content []byte) blobstore.StagedBlob {
	t.Helper()
	b, err := blobstore.Stage(context.Background(), d, ref, t.TempDir())
	if err != nil {
		t.Fatalf("Stage(%s): %v", ref, err)
	}
	for rest := content; len(rest) > 0; {
		n := min(len(rest), 1000)
		if _, err := b.Write(rest[:n]); err != nil {
			t.Fatalf("Write to a staged blob: %v", err)
		}
		rest = rest[n:]
	}
	return b
}

func testStagedInvisible(t *testing.T, d blobstore.Driver) {
	ref := testRef(40)
	content := randomBytes(40, 5000)
	b := stage(t, d, ref, content)
	assertUnstored(t, d, ref)
	if refs, _ := listAll(t, d); len(refs) != 0 {
		t.Fatalf("List shows %d blobs while one is only staged", len(refs))
	}
	if err := b.Publish(context.Background()); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	assertContent(t, d, ref, content)
}

func testStagedDiscardKeepsOld(t *testing.T, d blobstore.Driver) {
	ref := testRef(41)
	old := []byte("the blob stored before")
	store(t, d, ref, old)
	b := stage(t, d, ref, randomBytes(41, 3000))
	b.Discard()
	assertContent(t, d, ref, old)
	if refs, _ := listAll(t, d); len(refs) != 1 {
		t.Fatalf("List shows %d blobs after a discarded stage, want 1", len(refs))
	}
	replacement := randomBytes(42, 3000)
	if err := stage(t, d, ref, replacement).Publish(context.Background()); err != nil {
		t.Fatalf("Publish over a stored blob: %v", err)
	}
	assertContent(t, d, ref, replacement)
}

// testStagedLarge stages more than the spooling Stager keeps in memory.
func testStagedLarge(t *testing.T, d blobstore.Driver) {
	ref := testRef(43)
	content := randomBytes(43, 3<<20+17)
	if err := stage(t, d, ref, content).Publish(blobstore.WithDeferredSync(context.Background())); err != nil {
		t.Fatalf("Publish with deferred sync: %v", err)
	}
	if err := d.Sync(context.Background()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	assertContent(t, d, ref, content)
}

func testStagedFinishedOnce(t *testing.T, d blobstore.Driver) {
	ref := testRef(44)
	b := stage(t, d, ref, []byte("once"))
	if err := b.Publish(context.Background()); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if err := b.Publish(context.Background()); err == nil {
		t.Fatal("a second Publish succeeded")
	}
	if _, err := b.Write([]byte("more")); err == nil {
		t.Fatal("Write after Publish succeeded")
	}
	b.Discard() // after Publish: nothing
	assertContent(t, d, ref, []byte("once"))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	other := testRef(45)
	if err := stage(t, d, other, []byte("cancelled")).Publish(ctx); err == nil {
		t.Fatal("Publish with a cancelled context succeeded")
	}
	assertUnstored(t, d, other)
}

func assertUnstored(t *testing.T, d blobstore.Driver, ref blobstore.Ref) {
	t.Helper()
	_, err := d.Stat(context.Background(), ref)
	assertNotExist(t, "Stat of a blob only staged", err)
}
