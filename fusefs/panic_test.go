package fusefs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fs"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// panickyCatalog panics on lookups of one ref and knows no other blob.
type panickyCatalog struct{ bad blobstore.Ref }

func (c panickyCatalog) BlobRecord(ctx context.Context, ref blobstore.Ref) (*diskaccess.BlobMeta, int64, error) {
	if ref == c.bad {
		panic("catalog exploded")
	}
	return nil, 0, os.ErrNotExist
}
func (panickyCatalog) SetBlobMtime(context.Context, blobstore.Ref, int64) error { return nil }
func (panickyCatalog) ListVolumeBlobs(context.Context, int, blobstore.Ref, func(blobstore.Ref) error) error {
	return nil
}
func (panickyCatalog) ListBlobs(context.Context, blobstore.Ref, func(int) bool, func(blobstore.Ref) error) error {
	return nil
}
func (panickyCatalog) BlobRecords(context.Context, []blobstore.Ref, func(int, *diskaccess.BlobMeta, int64)) error {
	return nil
}
func (panickyCatalog) VolumeIDs(context.Context) ([]int, error) { return nil, nil }
func (panickyCatalog) VolumeName(context.Context, int) string   { return "v" }

// TestPanicBecomesEIO mounts in this process (the test only stats, which
// cannot deadlock with the server) and checks that a handler that panics
// answers EIO while the mount keeps serving.
func TestPanicBecomesEIO(t *testing.T) {
	requireFuse(t)
	bad := blobstore.RefOf([]byte("bad"))
	root := New(Config{Catalog: panickyCatalog{bad: bad}, SpoolDir: t.TempDir(), ReadOnly: true})
	opts := root.Options()
	opts.DirectMount = os.Geteuid() == 0
	dir := t.TempDir()
	server, err := fs.Mount(dir, root, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Unmount() })

	_, err = os.Stat(filepath.Join(dir, "ref", bad.String()))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("stat of a ref whose lookup panics: %v, want EIO", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ref", blobstore.RefOf([]byte("other")).String())); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after the panic, stat of another ref: %v, want ENOENT (the mount still serving)", err)
	}
	if _, err := os.ReadDir(filepath.Join(dir, "ref")); err != nil {
		t.Fatalf("after the panic, listing ref/: %v", err)
	}
}
