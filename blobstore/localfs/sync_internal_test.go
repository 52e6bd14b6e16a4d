package localfs

import (
	"context"
	"strings"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
)

// TestDeferredSyncDefersOnlyNewFiles: a deferred store of a new file waits
// for Sync; one that replaces a file is synced at once (a crash must not
// cost the durable old file); Sync empties the set.
func TestDeferredSyncDefersOnlyNewFiles(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := blobstore.WithDeferredSync(context.Background())
	existing, fresh := blobstore.RefOf([]byte("existing")), blobstore.RefOf([]byte("fresh"))
	if err := s.RawStore(context.Background(), existing, strings.NewReader("old")); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []blobstore.Ref{existing, fresh} {
		if err := s.RawStore(ctx, ref, strings.NewReader("new")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutObject(ctx, "keys/c", strings.NewReader("envelope")); err != nil {
		t.Fatal(err)
	}
	files, dirs := s.deferred.take()
	want := []string{s.path(fresh), s.objectsDir() + "/keys+c"}
	if len(files) != 2 || !files[want[0]] || !files[want[1]] || len(dirs) != 2 {
		t.Fatalf("deferred files %v, dirs %v; want exactly %v and their directories", files, dirs, want)
	}
	s.deferred.putBack(files, dirs)
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if files, dirs := s.deferred.take(); len(files)+len(dirs) != 0 {
		t.Fatalf("after Sync still deferred: %v, %v", files, dirs)
	}
}

// TestSyncOfManyFilesSyncsTheFilesystem: past syncfsFrom deferred files,
// one Sync makes them all durable (syncfs) and empties the set; the
// blobs read back.
func TestSyncOfManyFilesSyncsTheFilesystem(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := blobstore.WithDeferredSync(context.Background())
	for i := range 2 * syncfsFrom {
		content := []byte(strings.Repeat("x", i+1))
		if err := s.RawStore(ctx, blobstore.RefOf(content), strings.NewReader(string(content))); err != nil {
			t.Fatal(err)
		}
	}
	if files, _ := s.deferred.take(); len(files) != 2*syncfsFrom {
		t.Fatalf("%d files deferred, want %d", len(files), 2*syncfsFrom)
	} else {
		s.deferred.putBack(files, nil)
	}
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if files, dirs := s.deferred.take(); len(files)+len(dirs) != 0 {
		t.Fatalf("after Sync %d files and %d directories are still deferred", len(files), len(dirs))
	}
	count := 0
	if err := s.List(context.Background(), func(blobstore.BlobInfo) error { count++; return nil }); err != nil || count != 2*syncfsFrom {
		t.Fatalf("List after Sync: %d blobs, %v", count, err)
	}
}
