package store_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

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
	if first.Unchanged || first.Dirs != 4 || first.NewBlobs != 5 { // 4 trees and the record
		t.Errorf("first snapshot = %+v, want 4 directories encoded and 5 blobs", first)
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
	if second.Unchanged || second.Dirs != 3 || second.NewBlobs != 4 || second.Name <= first.Name {
		t.Errorf("second snapshot = %+v, want the 3 directories on the path (4 blobs with the record), named after %s", second, first.Name)
	}

	all, err := s.Snapshots(ctx, "photos", v.ID)
	if err != nil || len(all) != 2 || all[0].Name != first.Name || all[1].Name != second.Name {
		t.Fatalf("Snapshots = %+v, %v", all, err)
	}
	rec, err := s.Record(ctx, &all[1])
	if err != nil || rec.Parent != first.Name || rec.ParentRef != first.Record || rec.Root.Ref != second.Root {
		t.Errorf("second record = %+v, %v", rec, err)
	}
	var changes []string
	err = s.DiffSnapshots(ctx, &all[0], &all[1], func(c snapshot.Change) error {
		changes = append(changes, c.Kind.String()+" "+c.Path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0] != "modified a/b/f1" {
		t.Errorf("diff = %q, want only a/b/f1 modified", changes)
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
