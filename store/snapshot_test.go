package store_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/metastore/snapshot"
	"github.com/stofuse/stofuse/store"
)

// tree makes files/photos with dirs a/, a/b/ and c/, each with files,
// through the metadata as the mount does, and returns the inodes by path.
func tree(t *testing.T, s *store.Store) map[string]*badger.Inode {
	t.Helper()
	ctx := context.Background()
	meta := s.Meta()
	root, err := meta.CreateCollectionFolder(ctx, "photos", 0o755, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]*badger.Inode{"": root}
	for _, dir := range []string{"a", "a/b", "c"} {
		parent, name := split(dir)
		n, err := meta.Create(ctx, inodes[parent].Ino, name, &badger.Inode{Kind: badger.KindDir, Mode: 0o755, Mtime: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		inodes[dir] = n
	}
	for _, dir := range []string{"", "a", "a/b", "c"} {
		for i := range 3 {
			path := fmt.Sprintf("%s/f%d", dir, i)
			if dir == "" {
				path = fmt.Sprintf("f%d", i)
			}
			inodes[path] = writeFile(t, s, inodes[dir].Ino, fmt.Sprintf("f%d", i), []byte("content of "+path))
		}
	}
	return inodes
}

func split(path string) (string, string) {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			return path[:i], path[i+1:]
		}
	}
	return "", path
}

func writeFile(t *testing.T, s *store.Store, parent uint64, name string, content []byte) *badger.Inode {
	t.Helper()
	ctx := context.Background()
	v, _ := s.Volume(ctx, store.DefaultVolume)
	ref, size, err := s.Put(ctx, v.ID, "photos", bytes.NewReader(content), nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Meta().Create(ctx, parent, name, &badger.Inode{Kind: badger.KindFile, Mode: 0o644, Mtime: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	n, err = s.Meta().CommitContent(ctx, n.Ino, ref, size, 100, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSnapshotIncremental(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	inodes := tree(t, s)
	v, _ := s.Volume(ctx, store.DefaultVolume)

	first, err := s.Snapshot(ctx, "photos", v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if first.Unchanged || first.Dirs != 4 || first.NewBlobs != 6 { // 4 trees, the blob index and the record
		t.Errorf("first snapshot = %+v, want 4 directories encoded and 6 blobs", first)
	}
	again, err := s.Snapshot(ctx, "photos", v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Unchanged || again.Dirs != 0 || again.NewBlobs != 0 || again.Name != first.Name {
		t.Errorf("snapshot of an unchanged tree = %+v, want nothing done", again)
	}

	// One file in a/b changes: a/b, a and the root are encoded again; c is not.
	b := inodes["a/b"]
	if _, err := s.Meta().Remove(ctx, b.Ino, "f1", false); err != nil {
		t.Fatal(err)
	}
	writeFile(t, s, b.Ino, "f1", []byte("new content"))
	second, err := s.Snapshot(ctx, "photos", v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if second.Unchanged || second.Dirs != 3 || second.NewBlobs != 5 || second.Name <= first.Name {
		t.Errorf("second snapshot = %+v, want the 3 directories on the path (5 blobs with the index segment and the record), named after %s", second, first.Name)
	}

	all, err := s.Snapshots(ctx, "photos", v.ID)
	if err != nil || len(all) != 2 || all[0].Name != first.Name || all[1].Name != second.Name {
		t.Fatalf("Snapshots = %+v, %v", all, err)
	}
	rec, err := s.Record(ctx, &all[1])
	if err != nil || rec.Parent != first.Name || rec.ParentRef != first.Record || rec.Root.Ref != second.Root {
		t.Fatalf("second record = %+v, %v", rec, err)
	}
	firstRec, err := s.Record(ctx, &all[0])
	if err != nil {
		t.Fatal(err)
	}
	// The second index segment holds what changed: the new file's blob,
	// the 3 new trees, and the first snapshot's index segment and record;
	// it chains to the first segment, which holds every blob.
	segment := loadSegment(t, s, rec.Index)
	if segment.Parent != firstRec.Index || len(segment.Records) != 6 {
		t.Errorf("second index segment: parent %s (want %s), %d records (want 6)", segment.Parent, firstRec.Index, len(segment.Records))
	}
	if n := len(loadSegment(t, s, firstRec.Index).Records); n != 16 { // 12 files, 4 trees
		t.Errorf("first index segment holds %d records, want 16", n)
	}
	var changes []string
	err = s.DiffSnapshots(ctx, &all[0], &all[1], func(c snapshot.Change) error {
		changes = append(changes, c.Kind.String()+" "+c.Path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// a/b is modified too: removing and making f1 set its mtime and ctime.
	if len(changes) != 2 || changes[0] != "modified a/b" || changes[1] != "modified a/b/f1" {
		t.Errorf("diff = %q, want a/b and a/b/f1 modified", changes)
	}
	var paths []string
	err = snapshot.Walk(ctx, s.LoadTree, second.Root, func(path string, e snapshot.Entry) error {
		paths = append(paths, path)
		return nil
	})
	if err != nil || len(paths) != 15 {
		t.Errorf("the second snapshot holds %d paths (%v), want 15", len(paths), err)
	}
}

// TestSnapshotSeesTheTreeAsItWas: a snapshot taken while a file is being
// written for the first time does not hold it.
func TestSnapshotSkipsUncommittedFiles(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	inodes := tree(t, s)
	if _, err := s.Meta().Create(ctx, inodes["c"].Ino, "half", &badger.Inode{Kind: badger.KindFile, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	v, _ := s.Volume(ctx, store.DefaultVolume)
	result, err := s.Snapshot(ctx, "photos", v.ID)
	if err != nil {
		t.Fatal(err)
	}
	err = snapshot.Walk(ctx, s.LoadTree, result.Root, func(path string, e snapshot.Entry) error {
		if path == "c/half" {
			t.Error("the snapshot holds a file never committed")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRecoverFromAReplica: a replicate carries the snapshots' names and
// the keys along with the blobs, so the second volume alone rebuilds the
// store, in a new directory.
func TestRecoverFromAReplica(t *testing.T) {
	ctx := context.Background()
	s, key := newStore(t)
	tree(t, s)
	v1, _ := s.Volume(ctx, store.DefaultVolume)
	taken, err := s.Snapshot(ctx, "photos", v1.ID)
	if err != nil {
		t.Fatal(err)
	}
	replica := t.TempDir()
	v2, err := s.AddVolume(ctx, store.LocalVolume("replica", replica))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Replicate(ctx, v1, v2, store.ReplicateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	r, report, err := store.Recover(ctx, t.TempDir(), store.LocalVolume("default", replica), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !report.Complete() || len(report.Unusable) != 0 {
		t.Errorf("report = %+v", report)
	}
	var photos *store.RecoveredCollection
	for i := range report.Collections {
		if report.Collections[i].Name == "photos" {
			photos = &report.Collections[i]
		}
	}
	if photos == nil || photos.Snapshot != taken.Name || photos.Files != 15 {
		t.Fatalf("photos recovered as %+v, want snapshot %s with 15 entries", photos, taken.Name)
	}
	c, err := r.Collection(ctx, "photos")
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.Meta().Lookup(ctx, c.FolderIno, "f1")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := r.Cat(ctx, n.Ref, &out, nil); err != nil || out.String() != "content of f1" {
		t.Errorf("f1 after the recovery: %q, %v", out.String(), err)
	}
}

// TestSnapshotOfAnEmptyFolder: a folder that is empty and was never
// snapshotted stores nothing (a mount used only through ref/ gains no
// tree blobs).
func TestSnapshotOfAnEmptyFolder(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	v, _ := s.Volume(ctx, store.DefaultVolume)
	before := v.BlobCount
	r, err := s.Snapshot(ctx, store.DefaultCollection, v.ID)
	if err != nil || !r.Empty || r.NewBlobs != 0 {
		t.Fatalf("snapshot of an empty folder = %+v, %v; want Empty and nothing stored", r, err)
	}
	if v, _ = s.Volume(ctx, store.DefaultVolume); v.BlobCount != before {
		t.Errorf("the volume holds %d blobs after it, %d before", v.BlobCount, before)
	}
}

func loadSegment(t *testing.T, s *store.Store, ref blobstore.Ref) *snapshot.Segment {
	t.Helper()
	body, err := s.LoadTree(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	seg, err := snapshot.DecodeSegment(body)
	if err != nil {
		t.Fatal(err)
	}
	return seg
}

// TestRecoverWithTheBlobIndex: blobs the last snapshot's index knows are
// checked against its checksums and get back their recorded creation
// times and mtimes; a blob stored after the snapshot is verified with the
// keys; a damaged blob the index knows is refused, not indexed.
func TestRecoverWithTheBlobIndex(t *testing.T) {
	ctx := context.Background()
	s, key := newStore(t)
	inodes := tree(t, s)
	v, _ := s.Volume(ctx, store.DefaultVolume)
	touched := inodes["a/f0"].Ref
	mtime := time.Unix(1_500_000_000, 123).UTC()
	if err := s.Meta().SetBlobMtime(ctx, touched, mtime.UnixNano()); err != nil {
		t.Fatal(err)
	}
	created, _, err := s.Meta().BlobRecord(ctx, touched)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshot(ctx, "photos", v.ID); err != nil {
		t.Fatal(err)
	}
	late := put(t, s, store.DefaultVolume, []byte("stored after the snapshot"))
	damaged := inodes["c/f2"].Ref
	dir := s.Dir()
	s.Close()
	flipByte(t, filepath.Join(dir, "volumes", "default", damaged.String()[:3], damaged.String()), 60)
	if err := os.RemoveAll(filepath.Join(dir, "meta")); err != nil {
		t.Fatal(err)
	}

	r, report, err := store.Recover(ctx, dir, store.LocalVolume("default", filepath.Join(dir, "volumes", "default")), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// 12 files and 4 trees are in the index: one is damaged. The late
	// blob, the record and the index segment are verified with the key.
	if report.Blobs != 18 || report.FromIndex != 15 || len(report.Unusable) != 1 || report.Unusable[0].Ref != damaged {
		t.Fatalf("report: %d blobs, %d from the index, unusable %+v", report.Blobs, report.FromIndex, report.Unusable)
	}
	meta, gotMtime, err := r.Meta().BlobRecord(ctx, touched)
	if err != nil || gotMtime != mtime.UnixNano() || !meta.Created.Equal(created.Created) {
		t.Errorf("the touched blob after the recovery: created %v (want %v), mtime %d (want %d), %v",
			meta.Created, created.Created, gotMtime, mtime.UnixNano(), err)
	}
	if ok, _ := r.Meta().QueryBlobExists(ctx, late); !ok {
		t.Error("the blob stored after the snapshot is not indexed")
	}
}
