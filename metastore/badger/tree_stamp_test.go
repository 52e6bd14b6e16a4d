package badger_test

import (
	"context"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/badger"
)

// cacheAll records a made-up tree ref for each dir at its current stamp.
func cacheAll(t *testing.T, store *badger.Store, dirs ...uint64) {
	t.Helper()
	ctx := context.Background()
	var trees []badger.CachedTree
	err := store.ViewTree(ctx, func(v *badger.TreeView) error {
		for _, dir := range dirs {
			stamp, _, _, err := v.DirTree(dir)
			if err != nil {
				return err
			}
			trees = append(trees, badger.CachedTree{Dir: dir, Stamp: stamp, Ref: blobstore.RefOf([]byte{byte(dir)})})
		}
		return nil
	})
	if err == nil {
		err = store.SetCachedTrees(ctx, trees)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// valid says which of dirs still have a valid cached tree.
func valid(t *testing.T, store *badger.Store, dirs ...uint64) []bool {
	t.Helper()
	var ok []bool
	err := store.ViewTree(context.Background(), func(v *badger.TreeView) error {
		for _, dir := range dirs {
			_, ref, valid, err := v.DirTree(dir)
			if err != nil {
				return err
			}
			if valid && ref != blobstore.RefOf([]byte{byte(dir)}) {
				t.Errorf("dir %d: cached ref %s is not the one recorded", dir, ref)
			}
			ok = append(ok, valid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestTreeStamps: every change to a directory's listing or to an
// attribute of one of its entries invalidates that directory's cached
// tree, and no other.
func TestTreeStamps(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	root, err := store.CreateCollectionFolder(ctx, "photos", 0o755, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	a := create(t, store, root.Ino, "a", badger.KindDir)
	b := create(t, store, root.Ino, "b", badger.KindDir)
	f := create(t, store, a.Ino, "f", badger.KindFile)
	dirs := []uint64{root.Ino, a.Ino, b.Ino}

	steps := []struct {
		what   string
		change func() error
		want   []bool // root, a, b still valid
	}{
		{"nothing", func() error { return nil }, []bool{true, true, true}},
		{"commit f", func() error {
			_, err := store.CommitContent(ctx, f.Ino, blobstore.RefOf([]byte("x")), 1, 90, time.Now(), nil)
			return err
		}, []bool{true, false, true}},
		{"chmod f", func() error {
			_, err := store.SetAttr(ctx, f.Ino, func(n *badger.Inode) error { n.Mode = 0o600; return nil })
			return err
		}, []bool{true, false, true}},
		{"chmod a", func() error {
			_, err := store.SetAttr(ctx, a.Ino, func(n *badger.Inode) error { n.Mode = 0o700; return nil })
			return err
		}, []bool{false, true, true}},
		{"move f from a to b", func() error {
			_, err := store.Rename(ctx, a.Ino, "f", b.Ino, "g", false)
			return err
		}, []bool{true, false, false}},
		{"create in b", func() error {
			_, err := store.Create(ctx, b.Ino, "h", &badger.Inode{Kind: badger.KindSymlink, Target: "g"})
			return err
		}, []bool{true, true, false}},
		{"remove from b", func() error {
			_, err := store.Remove(ctx, b.Ino, "h", false)
			return err
		}, []bool{true, true, false}},
		{"rename a", func() error {
			_, err := store.Rename(ctx, root.Ino, "a", root.Ino, "c", false)
			return err
		}, []bool{false, true, true}},
	}
	for _, step := range steps {
		cacheAll(t, store, dirs...)
		if err := step.change(); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		got := valid(t, store, dirs...)
		for i := range got {
			if got[i] != step.want[i] {
				t.Errorf("after %s: valid (root, a, b) = %v, want %v", step.what, got, step.want)
				break
			}
		}
	}
}

// TestTreeViewSubdirs: the view lists a directory's subdirectories alone,
// and keeps seeing the tree as it was when it began.
func TestTreeViewSubdirs(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	root, err := store.CreateCollectionFolder(ctx, "photos", 0o755, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	create(t, store, root.Ino, "z", badger.KindDir)
	create(t, store, root.Ino, "file", badger.KindFile)
	create(t, store, root.Ino, "m", badger.KindDir)
	err = store.ViewTree(ctx, func(v *badger.TreeView) error {
		create(t, store, root.Ino, "later", badger.KindDir) // not seen by the view
		var subdirs, entries []string
		if err := v.Subdirs(ctx, root.Ino, func(name string, _ uint64) error { subdirs = append(subdirs, name); return nil }); err != nil {
			return err
		}
		if err := v.ReadDir(ctx, root.Ino, func(e badger.Entry) error { entries = append(entries, e.Name); return nil }); err != nil {
			return err
		}
		if len(subdirs) != 2 || subdirs[0] != "m" || subdirs[1] != "z" {
			t.Errorf("Subdirs = %v, want [m z]", subdirs)
		}
		if len(entries) != 3 {
			t.Errorf("ReadDir = %v, want the three entries made before the view", entries)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTreeIndexMigration: a store made before parents and subdirectories
// were indexed gets them when it is opened.
func TestTreeIndexMigration(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	root, err := store.CreateCollectionFolder(ctx, "photos", 0o755, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	a := create(t, store, root.Ino, "a", badger.KindDir)
	f := create(t, store, a.Ino, "f", badger.KindFile)
	if err := badger.DropTreeIndexForTest(store); err != nil {
		t.Fatal(err)
	}
	dir := store.Dir()
	store.Close()
	store, err = badger.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var subdirs []string
	err = store.ViewTree(ctx, func(v *badger.TreeView) error {
		return v.Subdirs(ctx, root.Ino, func(name string, _ uint64) error { subdirs = append(subdirs, name); return nil })
	})
	if err != nil || len(subdirs) != 1 || subdirs[0] != "a" {
		t.Fatalf("Subdirs after the migration = %v, %v; want [a]", subdirs, err)
	}
	cacheAll(t, store, a.Ino)
	if _, err := store.SetAttr(ctx, f.Ino, func(n *badger.Inode) error { n.Mode = 0o600; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := valid(t, store, a.Ino); got[0] {
		t.Error("a chmod of a file indexed by the migration left its directory's cached tree valid")
	}
}
