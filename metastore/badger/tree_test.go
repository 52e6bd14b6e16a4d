package badger_test

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/badger"
)

func folder(t testing.TB, store *badger.Store, name string) uint64 {
	t.Helper()
	c, err := store.Collection(context.Background(), name)
	if err != nil || c.FolderIno == 0 {
		t.Fatalf("collection %q has no folder: %+v, %v", name, c, err)
	}
	return c.FolderIno
}

func create(t testing.TB, store *badger.Store, parent uint64, name string, kind badger.Kind) *badger.Inode {
	t.Helper()
	n, err := store.Create(context.Background(), parent, name, &badger.Inode{Kind: kind, Mode: 0o644, Mtime: time.Now()})
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	return n
}

func names(t *testing.T, store *badger.Store, dir uint64) []string {
	t.Helper()
	var got []string
	err := store.ReadDir(context.Background(), dir, "", func(e badger.Entry) error {
		got = append(got, e.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestTreeOperations(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	root := folder(t, store, "default")
	dir := create(t, store, root, "dir", badger.KindDir)
	file := create(t, store, dir.Ino, "a.txt", badger.KindFile)
	create(t, store, dir.Ino, "b.txt", badger.KindFile)
	if file.Ino < badger.TreeInoBase {
		t.Fatalf("tree inode %d below %d", file.Ino, uint64(badger.TreeInoBase))
	}
	if _, err := store.Create(ctx, dir.Ino, "a.txt", &badger.Inode{Kind: badger.KindFile}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create of an existing name: %v", err)
	}
	if _, err := store.Create(ctx, file.Ino, "x", &badger.Inode{Kind: badger.KindFile}); !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("Create in a file: %v", err)
	}
	if got := names(t, store, dir.Ino); len(got) != 2 || got[0] != "a.txt" || got[1] != "b.txt" {
		t.Fatalf("ReadDir = %v", got)
	}

	ref := blobstore.RefOf([]byte("content"))
	mtime := time.Unix(1_000_000, 0)
	heldMode := func(n *badger.Inode) { n.Mode, n.UID = 0o640, 1000 } // set while it was written
	if _, err := store.CommitContent(ctx, file.Ino, ref, 7, 96, mtime, heldMode); err != nil {
		t.Fatal(err)
	}
	got, err := store.Lookup(ctx, dir.Ino, "a.txt")
	if err != nil || got.Ref != ref || got.Size != 7 || got.StoredSize != 96 || !got.Committed || !got.Mtime.Equal(mtime) {
		t.Fatalf("Lookup after CommitContent = %+v, %v", got, err)
	}
	if got.Mode != 0o640 || got.UID != 1000 {
		t.Fatalf("attributes held for the commit: mode %o, uid %d; want 640, 1000", got.Mode, got.UID)
	}

	if _, err := store.Remove(ctx, root, "dir", true); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatalf("rmdir of a non-empty directory: %v", err)
	}
	if _, err := store.Remove(ctx, dir.Ino, "a.txt", true); !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("rmdir of a file: %v", err)
	}
	if _, err := store.Remove(ctx, root, "dir", false); !errors.Is(err, syscall.EISDIR) {
		t.Fatalf("unlink of a directory: %v", err)
	}

	// rename over an existing file replaces it, atomically.
	replaced, err := store.Rename(ctx, dir.Ino, "b.txt", dir.Ino, "a.txt", false)
	if err != nil || replaced == nil || replaced.Ino != file.Ino {
		t.Fatalf("rename over a file: replaced %+v, %v", replaced, err)
	}
	if got := names(t, store, dir.Ino); len(got) != 1 || got[0] != "a.txt" {
		t.Fatalf("after rename: %v", got)
	}
	if _, err := store.Inode(ctx, file.Ino); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the replaced inode still exists: %v", err)
	}
	// A directory cannot move into itself or below itself.
	sub := create(t, store, dir.Ino, "sub", badger.KindDir)
	if _, err := store.Rename(ctx, root, "dir", sub.Ino, "loop", false); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("moving a directory below itself: %v", err)
	}
	if _, err := store.Rename(ctx, dir.Ino, "a.txt", root, "dir", false); !errors.Is(err, syscall.EISDIR) {
		t.Fatalf("renaming a file over a directory: %v", err)
	}
	if _, err := store.Rename(ctx, dir.Ino, "sub", root, "moved", true); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Remove(ctx, root, "moved", true); err != nil {
		t.Fatalf("rmdir of an empty, moved directory: %v", err)
	}
}

// TestUncommittedFilesAreRemovedAtMount: a file created but never stored
// (the mount died) disappears, name and all; committed files stay.
func TestUncommittedFilesAreRemovedAtMount(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "meta")
	store, err := badger.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	kek := initialize(t, store)
	root := folder(t, store, "default")
	half := create(t, store, root, "half-written", badger.KindFile)
	whole := create(t, store, root, "whole", badger.KindFile)
	store.CommitContent(ctx, whole.Ino, blobstore.RefOf(nil), 0, 89, time.Now(), nil)
	store.Close()

	store, err = badger.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Unlock(ctx, kek); err != nil {
		t.Fatal(err)
	}
	removed, err := store.RemoveUncommitted(ctx)
	if err != nil || removed != 1 {
		t.Fatalf("RemoveUncommitted = %d, %v; want 1", removed, err)
	}
	if got := names(t, store, root); len(got) != 1 || got[0] != "whole" {
		t.Fatalf("after the sweep: %v", got)
	}
	if _, err := store.Inode(ctx, half.Ino); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the uncommitted inode survived: %v", err)
	}
}

func TestCollectionFolders(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	photosFolder, err := store.CreateCollectionFolder(ctx, "photos", 0o700, 1, 2)
	if err != nil || photosFolder.Kind != badger.KindDir || photosFolder.Mode != 0o700 || photosFolder.UID != 1 {
		t.Fatalf("CreateCollectionFolder = %+v, %v", photosFolder, err)
	}
	photos, _ := store.Collection(ctx, "photos")
	if folders, _ := store.CollectionFolders(ctx); len(folders) != 2 || folders[1].Name != "photos" || folders[1].Ino != photosFolder.Ino {
		t.Fatalf("CollectionFolders = %+v", folders)
	}
	if _, err := store.CreateCollectionFolder(ctx, "photos", 0o700, 1, 2); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second folder photos: %v", err)
	}
	if _, err := store.CreateCollectionFolder(ctx, "a/b", 0o700, 1, 2); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("a folder name with a slash: %v", err)
	}
	create(t, store, photos.FolderIno, "img.jpg", badger.KindFile)
	if err := store.RemoveCollectionFolder(ctx, "photos"); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatalf("removing a non-empty folder: %v", err)
	}
	store.Remove(ctx, photos.FolderIno, "img.jpg", false)
	if err := store.RemoveCollectionFolder(ctx, "photos"); err != nil {
		t.Fatal(err)
	}
	// The collection and its key stay; a new folder brings it back.
	if _, err := store.CreateCollectionFolder(ctx, "photos", 0o755, 0, 0); err != nil {
		t.Fatal(err)
	}
	again, _ := store.Collection(ctx, "photos")
	if again.KeyID != photos.KeyID || again.FolderIno == photos.FolderIno {
		t.Fatalf("folder made again: %+v (key %s before)", again, photos.KeyID)
	}
}

// TestFilesUsing follows which files use a blob through commits, removes
// and renames over a file.
func TestFilesUsing(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	root := folder(t, store, "default")
	one, two := blobstore.RefOf([]byte("one")), blobstore.RefOf([]byte("two"))
	a := create(t, store, root, "a", badger.KindFile)
	b := create(t, store, root, "b", badger.KindFile)
	store.CommitContent(ctx, a.Ino, one, 3, 92, time.Now(), nil)
	store.CommitContent(ctx, b.Ino, one, 3, 92, time.Now(), nil)
	using := func(ref blobstore.Ref) int {
		n, err := store.FilesUsing(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if using(one) != 2 || using(two) != 0 {
		t.Fatalf("two files of blob one: FilesUsing = %d, %d", using(one), using(two))
	}
	store.CommitContent(ctx, b.Ino, two, 3, 92, time.Now(), nil) // b rewritten
	if using(one) != 1 || using(two) != 1 {
		t.Fatalf("after rewriting b: %d, %d", using(one), using(two))
	}
	store.Rename(ctx, root, "b", root, "a", false) // b replaces a
	if using(one) != 0 || using(two) != 1 {
		t.Fatalf("after renaming b over a: %d, %d", using(one), using(two))
	}
	store.Remove(ctx, root, "a", false)
	if using(two) != 0 {
		t.Fatalf("after removing the last file: %d", using(two))
	}
}

// TestDirectoryTimes: making, removing and renaming a name set the mtime
// and ctime of the directories whose listing changed, and a rename the
// ctime of what it moved; other directories keep theirs.
func TestDirectoryTimes(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	root := folder(t, store, "default")
	a, b := create(t, store, root, "a", badger.KindDir), create(t, store, root, "b", badger.KindDir)
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	// backdate sets an inode's mtime back (the ctime is the time of that
	// change) and returns its ctime.
	backdate := func(ino uint64) time.Time {
		t.Helper()
		n, err := store.SetAttr(ctx, ino, func(n *badger.Inode) error { n.Mtime = old; return nil })
		if err != nil {
			t.Fatal(err)
		}
		return n.Ctime
	}
	changed := func(what string, ino uint64, ctimeWas time.Time, mtimeToo bool) {
		t.Helper()
		n, err := store.Inode(ctx, ino)
		if err != nil {
			t.Fatal(err)
		}
		if !n.Ctime.After(ctimeWas) || mtimeToo != n.Mtime.After(old) {
			t.Errorf("%s: mtime %v, ctime %v (were %v and %v; want the ctime%s changed)", what, n.Mtime, n.Ctime, old, ctimeWas,
				map[bool]string{true: " and mtime", false: " alone"}[mtimeToo])
		}
	}
	aWas, bWas := backdate(a.Ino), backdate(b.Ino)
	f := create(t, store, a.Ino, "f", badger.KindFile)
	changed("a after a name was made in it", a.Ino, aWas, true)
	if n, _ := store.Inode(ctx, b.Ino); !n.Mtime.Equal(old) || !n.Ctime.Equal(bWas) {
		t.Errorf("b changed when a name was made in a: mtime %v, ctime %v", n.Mtime, n.Ctime)
	}
	aWas, fWas := backdate(a.Ino), backdate(f.Ino)
	if _, err := store.Rename(ctx, a.Ino, "f", b.Ino, "g", false); err != nil {
		t.Fatal(err)
	}
	changed("a after a name was moved out of it", a.Ino, aWas, true)
	changed("b after a name was moved into it", b.Ino, bWas, true)
	changed("the moved inode", f.Ino, fWas, false)
	bWas = backdate(b.Ino)
	if _, err := store.Remove(ctx, b.Ino, "g", false); err != nil {
		t.Fatal(err)
	}
	changed("b after a name was removed", b.Ino, bWas, true)
}
