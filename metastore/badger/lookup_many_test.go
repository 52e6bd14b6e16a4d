package badger_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
)

// TestBlobRecords: the records of many refs at once are those BlobRecord
// gives one by one; refs without a record (before, between and after the
// recorded ones) are left out.
func TestBlobRecords(t *testing.T) {
	ctx := context.Background()
	store, refs := useStore(t, 20)
	var asked []blobstore.Ref
	for i, ref := range refs {
		if i%4 == 0 {
			missing := ref
			missing[31] ^= 1 // next to a record, not one
			asked = append(asked, missing)
		}
		if i%5 != 1 {
			asked = append(asked, ref)
		}
	}
	slices.SortFunc(asked, func(a, b blobstore.Ref) int { return slices.Compare(a[:], b[:]) })
	got := map[int]bool{}
	err := store.BlobRecords(ctx, asked, func(i int, meta *diskaccess.BlobMeta, mtime int64) {
		got[i] = true
		want, wantMtime, err := store.BlobRecord(ctx, asked[i])
		if err != nil {
			t.Fatalf("record %d (%s): BlobRecords has it, BlobRecord: %v", i, asked[i], err)
		}
		if meta.Ref != want.Ref || meta.RealSize != want.RealSize || !slices.Equal(meta.Volumes, want.Volumes) || mtime != wantMtime {
			t.Errorf("record %d: %+v mtime %d, BlobRecord says %+v mtime %d", i, meta, mtime, want, wantMtime)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || len(got) == len(asked) {
		t.Fatalf("BlobRecords found %d of %d refs: the test asks for some that are recorded and some that are not", len(got), len(asked))
	}
	for i, ref := range asked {
		if _, _, err := store.BlobRecord(ctx, ref); (err == nil) != got[i] {
			t.Errorf("ref %d (%s): BlobRecords found it %v, BlobRecord: %v", i, ref, got[i], err)
		}
	}
}

// TestLookupMany: the inodes of many names of a directory at once are
// those Lookup gives; names that are not there, or were removed, are left
// out.
func TestLookupMany(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	dir := create(t, store, folder(t, store, "default"), "dir", badger.KindDir)
	other := create(t, store, folder(t, store, "default"), "other", badger.KindDir)
	var asked []string
	for i := range 30 {
		name := fmt.Sprintf("f%02d", i)
		asked = append(asked, name)
		if i%7 == 3 {
			continue // never made
		}
		kind := badger.KindFile
		if i%5 == 0 {
			kind = badger.KindDir
		}
		create(t, store, dir.Ino, name, kind)
		create(t, store, other.Ino, name+"x", badger.KindFile) // in another directory
		if i%6 == 1 {
			if _, err := store.Remove(ctx, dir.Ino, name, kind == badger.KindDir); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := map[int]*badger.Inode{}
	if err := store.LookupMany(ctx, dir.Ino, asked, func(i int, n *badger.Inode) { got[i] = n }); err != nil {
		t.Fatal(err)
	}
	for i, name := range asked {
		want, err := store.Lookup(ctx, dir.Ino, name)
		if err != nil {
			if got[i] != nil {
				t.Errorf("%s: LookupMany found inode %d, Lookup: %v", name, got[i].Ino, err)
			}
			continue
		}
		if n := got[i]; n == nil || n.Ino != want.Ino || n.Kind != want.Kind || n.Mode != want.Mode {
			t.Errorf("%s: LookupMany found %+v, Lookup %+v", name, n, want)
		}
	}
	if len(got) == 0 || len(got) == len(asked) {
		t.Fatalf("LookupMany found %d of %d names: the test asks for some that are there and some that are not", len(got), len(asked))
	}
}
