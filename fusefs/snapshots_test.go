package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore"
	"github.com/stofuse/stofuse/metastore/snapshot"
)

// fakeSnapshots holds snapshot trees in memory.
type fakeSnapshots struct {
	blobs map[blobstore.Ref][]byte
	roots map[string]snapshot.Entry // by snapshot name, of collection "c"
}

func (f *fakeSnapshots) Collections(ctx context.Context) ([]string, error) { return []string{"c"}, nil }

func (f *fakeSnapshots) Names(ctx context.Context, collection string) ([]string, error) {
	var names []string
	for name := range f.roots {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

func (f *fakeSnapshots) Root(ctx context.Context, collection, name string) (snapshot.Entry, error) {
	if e, ok := f.roots[name]; ok && collection == "c" {
		return e, nil
	}
	return snapshot.Entry{}, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
}

func (f *fakeSnapshots) LoadTree(ctx context.Context, ref blobstore.Ref) ([]byte, error) {
	if b, ok := f.blobs[ref]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("blob %s: %w", ref, fs.ErrNotExist)
}

// writeDir stores a directory of entries and returns its entry.
func (f *fakeSnapshots) writeDir(t *testing.T, name string, ino uint64, entries []snapshot.Entry) snapshot.Entry {
	t.Helper()
	ctx := context.Background()
	w := snapshot.NewWriter(func(ctx context.Context, ref blobstore.Ref, plain []byte) error {
		f.blobs[ref] = slices.Clone(plain) // the Writer reuses its buffer
		return nil
	})
	for _, e := range entries {
		if err := w.Add(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	ref, err := w.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	return snapshot.Entry{Name: name, Kind: snapshot.KindDir, Ino: ino, Mode: 0o750, Mtime: now, Ctime: now, Ref: ref}
}

func mountSnapshots(t *testing.T, snaps Snapshots) string {
	t.Helper()
	requireFuse(t)
	root := New(Config{Snapshots: snaps, SpoolDir: t.TempDir(), Logger: log.New(testLog{t}, "", 0)})
	opts := root.Options()
	opts.DirectMount = os.Geteuid() == 0
	dir := t.TempDir()
	server, err := gofs.Mount(dir, root, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Unmount() })
	return dir
}

// TestSnapshotViewLargeDirectory: a directory of 20 000 entries (many tree
// blobs) lists whole and in order, with the view's inode numbers; names
// look up, a symlink reads, a missing name is ENOENT, and a snapshot whose
// tree blob is lost is EIO.
func TestSnapshotViewLargeDirectory(t *testing.T) {
	snaps := &fakeSnapshots{blobs: map[blobstore.Ref][]byte{}, roots: map[string]snapshot.Entry{}}
	now := time.Unix(1_700_000_000, 0)
	var entries []snapshot.Entry
	for i := range 20_000 {
		entries = append(entries, snapshot.Entry{Name: fmt.Sprintf("file-%06d", i), Kind: snapshot.KindFile,
			Ino: metastore.TreeInoBase | uint64(100+i), Mode: 0o640, Mtime: now, Ctime: now})
	}
	entries = append(entries, snapshot.Entry{Name: "link", Kind: snapshot.KindSymlink, Ino: metastore.TreeInoBase | 99,
		Mode: 0o777, Mtime: now, Ctime: now, Target: "file-000001"})
	big := snaps.writeDir(t, "big", metastore.TreeInoBase|2, entries)
	good := "2026-12-01T09-30-05.123456789Z"
	snaps.roots[good] = snaps.writeDir(t, "c", metastore.TreeInoBase|1, []snapshot.Entry{big})
	lost := "2026-12-02T00-00-00.000000000Z"
	snaps.roots[lost] = snapshot.Entry{Name: "c", Kind: snapshot.KindDir, Ino: metastore.TreeInoBase | 1, Mode: 0o755, Ref: blobstore.RefOf([]byte("gone"))}
	if len(snaps.blobs) < 5 {
		t.Fatalf("the big directory is %d blobs; the test needs several", len(snaps.blobs))
	}
	dir := mountSnapshots(t, snaps)

	view := filepath.Join(dir, "snapshots", "c", good, "big")
	for pass := range 2 { // the second from the kernel's cache of the listing
		names, err := readNames(view)
		if err != nil || len(names) != len(entries) || !slices.IsSorted(names) {
			t.Fatalf("pass %d: listed %d names (sorted: %v), %v; want %d", pass, len(names), slices.IsSorted(names), err, len(entries))
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(view, "file-012345"), &st); err != nil || st.Mode != syscall.S_IFREG|0o640 || st.Ino>>62 != 3 {
		t.Errorf("stat file-012345: mode %o ino %#x, %v", st.Mode, st.Ino, err)
	}
	if target, err := os.Readlink(filepath.Join(view, "link")); err != nil || target != "file-000001" {
		t.Errorf("readlink = %q, %v", target, err)
	}
	if _, err := os.Stat(filepath.Join(view, "file-x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat of a name not in the snapshot: %v, want ENOENT", err)
	}
	if _, err := readNames(filepath.Join(dir, "snapshots", "c", lost)); !errors.Is(err, syscall.EIO) {
		t.Errorf("listing a snapshot whose tree blob is lost: %v, want EIO", err)
	}
	if err := os.WriteFile(filepath.Join(view, "new"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("creating a file in a snapshot: %v, want EROFS", err)
	}
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// testLog sends the mount's log to the test's.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(string(p))
	return len(p), nil
}
