package badger_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/badger"
)

// rsyncOver writes content as a new file and renames it over name, as
// rsync and editors replace a file.
func rsyncOver(t *testing.T, store *badger.Store, dir uint64, name, content string, mtime time.Time) *badger.Inode {
	t.Helper()
	temp := create(t, store, dir, "."+name+".tmp", badger.KindFile)
	commitContent(t, store, temp.Ino, recordBlob(t, store, content, 1), int64(len(content)), mtime)
	if _, err := store.Rename(context.Background(), dir, "."+name+".tmp", dir, name, false); err != nil {
		t.Fatal(err)
	}
	return temp
}

// settleAfterLosingNewBlobs settles as after a power loss that lost every
// blob journaled since the last Commit, and returns what it did with file
// ino (nil: nothing) and all it reported.
func settleAfterLosingNewBlobs(t *testing.T, store *badger.Store, ino uint64) (*badger.SettledFile, []badger.SettledFile) {
	t.Helper()
	states := checkBy{}
	for _, b := range journal(t, store).Blobs {
		states[b.Ref] = badger.CopyMissing
	}
	result, _ := settle(t, store, states)
	for i := range result.Files {
		if result.Files[i].Ino == ino {
			return &result.Files[i], result.Files
		}
	}
	return nil, result.Files
}

func TestSettleRestoresAFileReplacedByALostOne(t *testing.T) {
	ctx := context.Background()
	for _, rewritten := range []bool{false, true} {
		store, _, _ := newStore(t)
		root := folder(t, store, "default")
		old := create(t, store, root, "x", badger.KindFile)
		durable := recordBlob(t, store, "durable", 1)
		commitContent(t, store, old.Ino, durable, 7, time.Unix(100, 0))
		commit(t, store, nil)
		if rewritten { // its own new content is lost too: it comes back as it was at the Commit
			commitContent(t, store, old.Ino, recordBlob(t, store, "rewritten", 1), 9, time.Unix(150, 0))
		}
		moving := rsyncOver(t, store, root, "x", "new", time.Unix(200, 0))
		if j := journal(t, store); len(j.Replaced) != 1 || j.Replaced[0].Moving != moving.Ino || j.Replaced[0].Name != "x" {
			t.Fatalf("journal after the rename: %+v", j.Replaced)
		}
		removed, files := settleAfterLosingNewBlobs(t, store, moving.Ino)
		if removed == nil || removed.Outcome != badger.FileRemoved || !slices.Equal(removed.Restored, []string{"default/x"}) {
			t.Fatalf("rewritten %v: Settle: %+v", rewritten, files)
		}
		n, err := store.Lookup(ctx, root, "x")
		if err != nil || n.Ino != old.Ino || n.Ref != durable || n.Size != 7 || !n.Mtime.Equal(time.Unix(100, 0)) {
			t.Errorf("rewritten %v: x after Settle: %+v, %v", rewritten, n, err)
		}
		if users, _ := store.FilesUsing(ctx, durable); users != 1 {
			t.Errorf("rewritten %v: %d files use the durable blob", rewritten, users)
		}
		if got := names(t, store, root); !slices.Equal(got, []string{"x"}) {
			t.Errorf("rewritten %v: folder holds %v", rewritten, got)
		}
		if j := journal(t, store); !j.Empty() {
			t.Errorf("rewritten %v: journal after Settle: %+v", rewritten, j)
		}
	}
}

// The entry of a replaced file goes with the Commit that makes the new
// file's content durable; a file whose content is durable already
// replaces without one.
func TestReplacedFileEntries(t *testing.T) {
	store, _, _ := newStore(t)
	root := folder(t, store, "default")
	old := create(t, store, root, "x", badger.KindFile)
	commitContent(t, store, old.Ino, recordBlob(t, store, "old", 1), 3, time.Now())
	commit(t, store, nil)
	rsyncOver(t, store, root, "x", "new", time.Now())
	commit(t, store, nil)
	if j := journal(t, store); !j.Empty() {
		t.Fatalf("journal after the Commit: %+v", j)
	}
	durable := create(t, store, root, "y", badger.KindFile)
	commitContent(t, store, durable.Ino, recordBlob(t, store, "durable y", 1), 9, time.Now())
	commit(t, store, nil)
	if _, err := store.Rename(context.Background(), root, "y", root, "x", false); err != nil {
		t.Fatal(err)
	}
	if j := journal(t, store); !j.Empty() {
		t.Errorf("journal after a durable file replaced another: %+v", j)
	}
}

// Replaced twice in one commit interval, both new contents lost: the
// durable file comes back; if the first replacement survived, it does.
func TestSettleRestoresThroughTwoReplacements(t *testing.T) {
	ctx := context.Background()
	for _, firstSurvives := range []bool{false, true} {
		store, _, _ := newStore(t)
		root := folder(t, store, "default")
		old := create(t, store, root, "x", badger.KindFile)
		durable := recordBlob(t, store, "durable", 1)
		commitContent(t, store, old.Ino, durable, 7, time.Unix(100, 0))
		commit(t, store, nil)
		first := rsyncOver(t, store, root, "x", "first", time.Unix(200, 0))
		rsyncOver(t, store, root, "x", "second", time.Unix(300, 0))
		states := checkBy{blobstore.RefOf([]byte("second")): badger.CopyMissing}
		want := old.Ino
		if !firstSurvives {
			states[blobstore.RefOf([]byte("first"))] = badger.CopyMissing
		} else {
			want = first.Ino
		}
		settle(t, store, states)
		n, err := store.Lookup(ctx, root, "x")
		if err != nil || n.Ino != want {
			t.Errorf("first survives %v: x is %+v, %v; want inode %d", firstSurvives, n, err, want)
		}
		if got := names(t, store, root); !slices.Equal(got, []string{"x"}) {
			t.Errorf("first survives %v: folder holds %v", firstSurvives, got)
		}
		if j := journal(t, store); !j.Empty() {
			t.Errorf("first survives %v: journal after Settle: %+v", firstSurvives, j)
		}
	}
}

// TestReplacedFileKeepsItsXattrs: a file replaced by a rename (rsync -X,
// an editor) and put back by Settle, its replacement's content lost,
// comes back with its user.* attributes; when the replacement's content
// becomes durable instead, the replaced file's attributes go with its
// journal entry.
func TestReplacedFileKeepsItsXattrs(t *testing.T) {
	ctx := context.Background()
	for _, lost := range []bool{true, false} {
		store, _, _ := newStore(t)
		root := folder(t, store, "default")
		old := create(t, store, root, "x", badger.KindFile)
		commitContent(t, store, old.Ino, recordBlob(t, store, "durable", 1), 7, time.Unix(100, 0))
		if _, err := store.SetXattr(ctx, old.Ino, "user.k", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		commit(t, store, nil)
		rsyncOver(t, store, root, "x", "new", time.Unix(200, 0))
		if lost {
			settleAfterLosingNewBlobs(t, store, 0)
			n, err := store.Lookup(ctx, root, "x")
			if err != nil || n.Ino != old.Ino || !n.HasXattrs {
				t.Fatalf("x after Settle: %+v, %v", n, err)
			}
			if xattrs, err := store.Xattrs(ctx, old.Ino); err != nil || len(xattrs) != 1 || string(xattrs[0].Value) != "v" {
				t.Errorf("the restored file's xattrs: %+v, %v", xattrs, err)
			}
			continue
		}
		commit(t, store, nil)
		contents, err := badger.ContentsForTest(store)
		if err != nil {
			t.Fatal(err)
		}
		for key := range contents {
			if key[0] == 'a' {
				t.Errorf("the replaced file's xattr %q is left after the Commit", key)
			}
		}
	}
}

// TestSettleRestoresALinkedName: a rename over one name of a file with
// two, then a power loss that loses the new file's content: Settle removes
// the new file and gives the name back to the linked file, which its
// other name kept.
func TestSettleRestoresALinkedName(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	root := folder(t, store, "default")
	old := create(t, store, root, "x", badger.KindFile)
	durable := recordBlob(t, store, "durable", 1)
	commitContent(t, store, old.Ino, durable, 7, time.Unix(100, 0))
	if _, err := store.Link(ctx, old.Ino, root, "y"); err != nil {
		t.Fatal(err)
	}
	commit(t, store, nil)
	moving := rsyncOver(t, store, root, "x", "new", time.Unix(200, 0))
	if n, err := store.Lookup(ctx, root, "y"); err != nil || n.Links() != 1 {
		t.Fatalf("y after the rename over x: %+v, %v", n, err)
	}
	removed, files := settleAfterLosingNewBlobs(t, store, moving.Ino)
	if removed == nil || removed.Outcome != badger.FileRemoved || !slices.Equal(removed.Restored, []string{"default/x"}) {
		t.Fatalf("Settle: %+v", files)
	}
	for _, name := range []string{"x", "y"} {
		n, err := store.Lookup(ctx, root, name)
		if err != nil || n.Ino != old.Ino || n.Ref != durable || n.Links() != 2 {
			t.Errorf("%s after Settle: %+v, %v", name, n, err)
		}
	}
	checkLinks(t, store, old.Ino, 2, map[uint64]uint32{root: 2})
	if j := journal(t, store); !j.Empty() {
		t.Errorf("journal after Settle: %+v", j)
	}
}
