package badger_test

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"syscall"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/badger"
)

// checkLinks checks an inode's link count, the directories the store
// lists for its names (none for one name) and that its parent is one of
// them.
func checkLinks(t *testing.T, store *badger.Store, ino uint64, nlink uint32, dirs map[uint64]uint32) {
	t.Helper()
	n, err := store.Inode(context.Background(), ino)
	if err != nil {
		t.Fatal(err)
	}
	if n.Links() != nlink {
		t.Errorf("inode %d has %d links, want %d", ino, n.Links(), nlink)
	}
	got, parent, err := badger.LinksForTest(store, ino)
	if err != nil {
		t.Fatal(err)
	}
	if nlink == 1 {
		if len(got) != 0 {
			t.Errorf("inode %d with one name lists directories %v", ino, got)
		}
		return
	}
	if !maps.Equal(got, dirs) {
		t.Errorf("inode %d: directories %v, want %v", ino, got, dirs)
	}
	if got[parent] == 0 {
		t.Errorf("inode %d: parent %d holds none of its names (%v)", ino, parent, got)
	}
}

func TestHardLinks(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	root := folder(t, store, "default")
	a := create(t, store, root, "a", badger.KindDir)
	b := create(t, store, root, "b", badger.KindDir)
	file := create(t, store, a.Ino, "f", badger.KindFile)
	if file.Links() != 1 {
		t.Fatalf("a new file has %d links", file.Links())
	}
	ref := blobstore.RefOf([]byte("hello"))
	if _, err := store.CommitContent(ctx, file.Ino, ref, 5, 40, file.Mtime, nil); err != nil {
		t.Fatal(err)
	}

	linked, err := store.Link(ctx, file.Ino, b.Ino, "g")
	if err != nil || linked.Links() != 2 || linked.Ref != ref || !linked.Ctime.After(file.Ctime) {
		t.Fatalf("Link: %+v, %v", linked, err)
	}
	if _, err := store.Link(ctx, file.Ino, a.Ino, "f2"); err != nil {
		t.Fatal(err)
	}
	checkLinks(t, store, file.Ino, 3, map[uint64]uint32{a.Ino: 2, b.Ino: 1})
	for _, name := range []struct {
		dir  uint64
		name string
	}{{a.Ino, "f"}, {a.Ino, "f2"}, {b.Ino, "g"}} {
		n, err := store.Lookup(ctx, name.dir, name.name)
		if err != nil || n.Ino != file.Ino || n.Links() != 3 {
			t.Errorf("Lookup(%s): %+v, %v", name.name, n, err)
		}
	}
	if n, _ := store.FilesUsing(ctx, ref); n != 1 {
		t.Errorf("%d files use the blob; one inode does", n)
	}

	// The refusals link(2) makes.
	if _, err := store.Link(ctx, file.Ino, b.Ino, "g"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Link onto an existing name: %v", err)
	}
	if _, err := store.Link(ctx, a.Ino, b.Ino, "dir"); !errors.Is(err, syscall.EPERM) {
		t.Errorf("Link of a directory: %v", err)
	}
	if _, err := store.Link(ctx, file.Ino, file.Ino, "x"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("Link into a file: %v", err)
	}
	if _, err := store.CreateCollection(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	other := folder(t, store, "other")
	if _, err := store.Link(ctx, file.Ino, other, "x"); !errors.Is(err, syscall.EXDEV) {
		t.Errorf("Link into another collection: %v", err)
	}
	if _, err := store.Rename(ctx, b.Ino, "g", other, "g", false); !errors.Is(err, syscall.EXDEV) {
		t.Errorf("Rename of a linked file into another collection: %v", err)
	}

	// A change through one name is a change of every directory naming it.
	stampA, _ := badger.DirStampForTest(store, a.Ino)
	stampB, _ := badger.DirStampForTest(store, b.Ino)
	if _, err := store.SetAttr(ctx, file.Ino, func(n *badger.Inode) error { n.Mode = 0o600; return nil }); err != nil {
		t.Fatal(err)
	}
	if s, _ := badger.DirStampForTest(store, a.Ino); s == stampA {
		t.Error("a chmod left the stamp of a directory naming the file")
	}
	if s, _ := badger.DirStampForTest(store, b.Ino); s == stampB {
		t.Error("a chmod left the stamp of the other directory naming the file")
	}

	// Rename moves a name, and the directories follow.
	if _, err := store.Rename(ctx, a.Ino, "f", b.Ino, "h", false); err != nil {
		t.Fatal(err)
	}
	checkLinks(t, store, file.Ino, 3, map[uint64]uint32{a.Ino: 1, b.Ino: 2})
	// A rename between two names of one inode does nothing (rename(2)).
	if _, err := store.Rename(ctx, b.Ino, "h", b.Ino, "g", false); err != nil {
		t.Fatal(err)
	}
	if got := names(t, store, b.Ino); len(got) != 2 {
		t.Errorf("b after a rename onto another name of the file: %v", got)
	}

	// Removing names keeps the inode until its last goes.
	left, err := store.Remove(ctx, b.Ino, "g", false)
	if err != nil || left.Links() != 2 || left.Nlink == 0 {
		t.Fatalf("Remove of one of three names: %+v, %v", left, err)
	}
	checkLinks(t, store, file.Ino, 2, map[uint64]uint32{a.Ino: 1, b.Ino: 1})
	if left, err = store.Remove(ctx, a.Ino, "f2", false); err != nil || left.Nlink != 1 {
		t.Fatalf("Remove of one of two names: %+v, %v", left, err)
	}
	checkLinks(t, store, file.Ino, 1, nil)
	if n, err := store.Lookup(ctx, b.Ino, "h"); err != nil || n.Ino != file.Ino || n.Ref != ref {
		t.Fatalf("the last name: %+v, %v", n, err)
	}
	// With one name left, it may move to another collection again.
	if _, err := store.Rename(ctx, b.Ino, "h", other, "h", false); err != nil {
		t.Fatalf("Rename of a file with one name left into another collection: %v", err)
	}
	if left, err = store.Remove(ctx, other, "h", false); err != nil || left.Nlink != 0 {
		t.Fatalf("Remove of the last name: %+v, %v", left, err)
	}
	if _, err := store.Inode(ctx, file.Ino); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the inode after its last name went: %v", err)
	}
	if n, _ := store.FilesUsing(ctx, ref); n != 0 {
		t.Errorf("%d files use the blob of a removed file", n)
	}
}

// TestRenameOverALink: a rename onto one name of a linked file drops that
// name only; the file lives on under its others.
func TestRenameOverALink(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	root := folder(t, store, "default")
	target := create(t, store, root, "target", badger.KindFile)
	if _, err := store.Link(ctx, target.Ino, root, "other"); err != nil {
		t.Fatal(err)
	}
	moving := create(t, store, root, "moving", badger.KindFile)
	replaced, err := store.Rename(ctx, root, "moving", root, "target", false)
	if err != nil || replaced == nil || replaced.Ino != target.Ino || replaced.Nlink != 1 {
		t.Fatalf("Rename over a linked file: %+v, %v", replaced, err)
	}
	checkLinks(t, store, target.Ino, 1, nil)
	if n, err := store.Lookup(ctx, root, "target"); err != nil || n.Ino != moving.Ino {
		t.Errorf("target after the rename: %+v, %v", n, err)
	}
	if n, err := store.Lookup(ctx, root, "other"); err != nil || n.Ino != target.Ino || n.Links() != 1 {
		t.Errorf("the other name after the rename: %+v, %v", n, err)
	}
}

// TestHardLinksSurviveReopen: the link count and names are in the store.
func TestHardLinksSurviveReopen(t *testing.T) {
	ctx := context.Background()
	store, dir := openDir(t)
	root := folder(t, store, "default")
	file := create(t, store, root, "f", badger.KindSymlink)
	if _, err := store.Link(ctx, file.Ino, root, "g"); err != nil {
		t.Fatal(err)
	}
	store = reopen(t, store, dir)
	checkLinks(t, store, file.Ino, 2, map[uint64]uint32{root: 2})
	if got := names(t, store, root); len(got) != 2 {
		t.Errorf("names after a reopen: %v", got)
	}
}

// TestSettleRemovesEveryName: a new file linked before its content
// became durable, then lost to a power loss, goes with all its names;
// nothing names an inode that is gone.
func TestSettleRemovesEveryName(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	if _, err := store.AddVolume(ctx, badger.Volume{Label: "v", UUID: "u", Driver: "localfs"}); err != nil {
		t.Fatal(err)
	}
	root := folder(t, store, "default")
	dir := create(t, store, root, "dir", badger.KindDir)
	commit(t, store, nil)
	file := create(t, store, root, "new", badger.KindFile)
	lost := recordBlob(t, store, "lost", 1)
	commitContent(t, store, file.Ino, lost, 4, time.Unix(200, 0))
	for _, name := range []struct {
		dir  uint64
		name string
	}{{root, "second"}, {dir.Ino, "third"}} {
		if _, err := store.Link(ctx, file.Ino, name.dir, name.name); err != nil {
			t.Fatal(err)
		}
	}
	result, _ := settle(t, store, checkBy{lost: badger.CopyMissing})
	if len(result.Files) != 1 || result.Files[0].Outcome != badger.FileRemoved {
		t.Fatalf("Settle: %+v", result)
	}
	if _, err := store.Inode(ctx, file.Ino); !isNotExist(err) {
		t.Errorf("the lost file after Settle: %v", err)
	}
	if got := names(t, store, root); len(got) != 1 || got[0] != "dir" {
		t.Errorf("the folder after Settle: %v, want only dir", got)
	}
	if got := names(t, store, dir.Ino); len(got) != 0 {
		t.Errorf("dir after Settle: %v, want nothing", got)
	}
	if dirs, _, _ := badger.LinksForTest(store, file.Ino); len(dirs) != 0 {
		t.Errorf("the lost file's link directories are left: %v", dirs)
	}
}

// TestDirectoryWithLinksStaysInItsCollection: a directory holding a name
// of a file whose other name is outside it does not move to another
// collection (EXDEV: the names of an inode stay in one collection); one
// whose linked files have all their names inside it does.
func TestDirectoryWithLinksStaysInItsCollection(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	root := folder(t, store, "default")
	if _, err := store.CreateCollection(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	other := folder(t, store, "other")
	d := create(t, store, root, "d", badger.KindDir)
	sub := create(t, store, d.Ino, "sub", badger.KindDir)
	f := create(t, store, sub.Ino, "f", badger.KindFile)
	if _, err := store.Link(ctx, f.Ino, root, "g"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Rename(ctx, root, "d", other, "d", false); !errors.Is(err, syscall.EXDEV) {
		t.Errorf("moving a directory holding one of two names of a file into another collection: %v, want EXDEV", err)
	}
	if _, err := store.Rename(ctx, root, "d", root, "e", false); err != nil {
		t.Errorf("moving it within its collection: %v", err)
	}
	if _, err := store.Rename(ctx, root, "g", sub.Ino, "g", false); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Rename(ctx, root, "e", other, "e", false); err != nil {
		t.Errorf("moving a directory holding every name of its linked file into another collection: %v", err)
	}
	if _, err := store.Link(ctx, f.Ino, other, "h"); err != nil {
		t.Errorf("a link in the collection the file moved to: %v", err)
	}
}

// TestDirectoryLinkCounts: a directory's link count is 2 and one for each
// subdirectory, through mkdir, rmdir and renames within and between
// directories; a store made before the counts were kept gets them when
// opened.
func TestDirectoryLinkCounts(t *testing.T) {
	ctx := context.Background()
	store, dir := openDir(t)
	root := folder(t, store, "default")
	a := create(t, store, root, "a", badger.KindDir)
	b := create(t, store, root, "b", badger.KindDir)
	create(t, store, a.Ino, "x", badger.KindDir)
	create(t, store, a.Ino, "y", badger.KindDir)
	create(t, store, a.Ino, "f", badger.KindFile)
	links := func(ino uint64) uint32 {
		t.Helper()
		n, err := store.Inode(ctx, ino)
		if err != nil {
			t.Fatal(err)
		}
		return n.DirLinks()
	}
	check := func(when string, want map[uint64]uint32) {
		t.Helper()
		for ino, n := range want {
			if got := links(ino); got != n {
				t.Errorf("%s: directory %d has link count %d, want %d", when, ino, got, n)
			}
		}
	}
	check("made", map[uint64]uint32{root: 4, a.Ino: 4, b.Ino: 2})
	if _, err := store.Rename(ctx, a.Ino, "x", b.Ino, "x", false); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Rename(ctx, a.Ino, "f", b.Ino, "f", false); err != nil {
		t.Fatal(err)
	}
	check("x and f moved from a to b", map[uint64]uint32{root: 4, a.Ino: 3, b.Ino: 3})
	create(t, store, b.Ino, "z", badger.KindDir)
	if _, err := store.Rename(ctx, b.Ino, "x", b.Ino, "z", false); err != nil { // over an empty directory
		t.Fatal(err)
	}
	if _, err := store.Rename(ctx, a.Ino, "y", a.Ino, "w", false); err != nil {
		t.Fatal(err)
	}
	check("x renamed over z, y renamed in a", map[uint64]uint32{a.Ino: 3, b.Ino: 3})
	if _, err := store.Remove(ctx, a.Ino, "w", true); err != nil {
		t.Fatal(err)
	}
	check("w removed", map[uint64]uint32{root: 4, a.Ino: 2, b.Ino: 3})

	if err := badger.DropDirLinksForTest(store); err != nil {
		t.Fatal(err)
	}
	check("counts dropped", map[uint64]uint32{root: 2, b.Ino: 2})
	store = reopen(t, store, dir)
	check("reopened", map[uint64]uint32{root: 4, a.Ino: 2, b.Ino: 3})
}
