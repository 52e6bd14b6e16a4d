package localfs_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/blobstore/localfs"
	"github.com/stofuse/stofuse/blobstore/storagetest"
)

func open(t *testing.T) *localfs.Store {
	t.Helper()
	s, err := localfs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) blobstore.Driver { return open(t) })
}

func TestOpenRefusesMissingDirectory(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "not-attached")
	if _, err := localfs.Open(missing); err == nil {
		t.Fatal("Open of a missing directory succeeded")
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("Open created the missing volume directory")
	}
}

func TestShardedLayout(t *testing.T) {
	s := open(t)
	ref := blobstore.RefOf([]byte("layout"))
	if err := s.RawStore(context.Background(), ref, strings.NewReader("layout")); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(s.Dir(), ref.String()[:3], ref.String())
	if got, err := os.ReadFile(want); err != nil || string(got) != "layout" {
		t.Fatalf("blob not at %s: %v", want, err)
	}
}

func TestObjectLayout(t *testing.T) {
	s := open(t)
	if err := s.PutObject(context.Background(), "snapshots/default/1", strings.NewReader("record")); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(s.Dir(), "objects", "snapshots+default+1")
	if got, err := os.ReadFile(want); err != nil || string(got) != "record" {
		t.Fatalf("object not at %s: %v", want, err)
	}
}

// TestSweepObjects: an interrupted PutObject's temp file in the objects
// directory is swept as a blob's would be, and the objects stay.
func TestSweepObjects(t *testing.T) {
	s := open(t)
	if err := s.PutObject(context.Background(), "volume", strings.NewReader("v")); err != nil {
		t.Fatal(err)
	}
	abandoned := filepath.Join(s.Dir(), "objects", ".tmp-abandoned")
	if err := os.WriteFile(abandoned, []byte("half an object"), 0o600); err != nil {
		t.Fatal(err)
	}
	if removed, err := s.Sweep(context.Background()); err != nil || removed != 1 {
		t.Fatalf("Sweep = %d, %v; want 1, nil", removed, err)
	}
	var names []string
	s.ListObjects(context.Background(), "", func(info blobstore.ObjectInfo) error {
		names = append(names, info.Name)
		return nil
	})
	if len(names) != 1 || names[0] != "volume" {
		t.Fatalf("objects after Sweep: %v, want [volume]", names)
	}
}

// TestSweep leaves two temp files as a crash would, one abandoned and one
// still locked by a live writer: Sweep removes only the abandoned one.
func TestSweep(t *testing.T) {
	s := open(t)
	ref := blobstore.RefOf([]byte("sweep"))
	if err := s.RawStore(context.Background(), ref, strings.NewReader("sweep")); err != nil {
		t.Fatal(err)
	}
	shard := filepath.Join(s.Dir(), ref.String()[:3])
	abandoned := filepath.Join(shard, ".tmp-abandoned")
	if err := os.WriteFile(abandoned, []byte("half a blob"), 0o600); err != nil {
		t.Fatal(err)
	}
	live, err := os.Create(filepath.Join(shard, ".tmp-live"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if err := unix.Flock(int(live.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}

	removed, err := s.Sweep(context.Background())
	if err != nil || removed != 1 {
		t.Fatalf("Sweep = %d, %v; want 1, nil", removed, err)
	}
	if _, err := os.Stat(abandoned); !os.IsNotExist(err) {
		t.Fatalf("abandoned temp file still there (%v)", err)
	}
	if _, err := os.Stat(live.Name()); err != nil {
		t.Fatalf("Sweep removed a temp file being written: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(shard, ref.String())); err != nil || !bytes.Equal(got, []byte("sweep")) {
		t.Fatalf("Sweep touched a stored blob: %v", err)
	}
}

func TestListSkipsStrays(t *testing.T) {
	s := open(t)
	ref := blobstore.RefOf([]byte("a"))
	if err := s.RawStore(context.Background(), ref, strings.NewReader("a")); err != nil {
		t.Fatal(err)
	}
	shard := filepath.Join(s.Dir(), ref.String()[:3])
	for _, stray := range []string{".tmp-x", "README", strings.ToUpper(ref.String())} {
		if err := os.WriteFile(filepath.Join(shard, stray), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(s.Dir(), "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	var listed []blobstore.Ref
	err := s.List(context.Background(), func(info blobstore.BlobInfo) error {
		listed = append(listed, info.Ref)
		return nil
	})
	if err != nil || len(listed) != 1 || listed[0] != ref {
		t.Fatalf("List = %v, %v; want only %s", listed, err, ref)
	}
}

// TestSweepRemovesOldUnlockedNewFiles: a temp file whose writer died before
// locking it (".new-") goes once it is a minute old, not before.
func TestSweepRemovesOldUnlockedNewFiles(t *testing.T) {
	s := open(t)
	shard := filepath.Join(s.Dir(), "abc")
	os.Mkdir(shard, 0o700)
	old, fresh := filepath.Join(shard, ".new-old"), filepath.Join(shard, ".new-fresh")
	os.WriteFile(old, nil, 0o600)
	os.WriteFile(fresh, nil, 0o600)
	anHourAgo := time.Now().Add(-time.Hour)
	os.Chtimes(old, anHourAgo, anHourAgo)
	if removed, err := s.Sweep(context.Background()); err != nil || removed != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", removed, err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("Sweep removed a fresh .new- file: %v", err)
	}
}
