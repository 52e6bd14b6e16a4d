package fusefs

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore"
)

// addRecords records n made-up blobs on volume 1 (a listing reads only
// the metadata store), the refs of "seed" 0..n-1.
func addRecords(t *testing.T, r *rig, seed string, n int) []string {
	t.Helper()
	var metas []*diskaccess.BlobMeta
	var names []string
	for i := range n {
		ref := blobstore.RefOf(binary.BigEndian.AppendUint64([]byte(seed), uint64(i)))
		metas = append(metas, &diskaccess.BlobMeta{Ref: ref, RealSize: 10, SizeOnDisk: 99,
			EncryptionKeyId: "dek-listing", ExpectedCrc32: []byte{0, 0, 0, 0}, Created: time.Now()})
		names = append(names, ref.String())
	}
	if err := r.meta.WriteBlobsCreated(context.Background(), metas, 1); err != nil {
		t.Fatal(err)
	}
	return names
}

// readSome reads up to n names from an open directory (all, if n < 0).
func readSome(t *testing.T, d *os.File, n int) []string {
	t.Helper()
	names, err := d.Readdirnames(n)
	if err != nil && !(err == io.EOF && n > 0) {
		t.Fatal(err)
	}
	return names
}

// checkListing fails unless got holds every name of before exactly once,
// each of added at most once, and nothing else.
func checkListing(t *testing.T, got, before, added []string) {
	t.Helper()
	count := map[string]int{}
	for _, name := range got {
		count[name]++
	}
	for _, name := range before {
		if count[name] != 1 {
			t.Errorf("%s existed before the listing started and is listed %d times", name, count[name])
		}
		delete(count, name)
	}
	for _, name := range added {
		if count[name] > 1 {
			t.Errorf("%s, added while listing, is listed %d times", name, count[name])
		}
		delete(count, name)
	}
	for name, n := range count {
		t.Errorf("%s is listed %d times and was never made", name, n)
	}
}

// TestRefListingUnderChange: blobs stored while ref/ is being listed, some
// sorting before where the listing is and some after, are listed at most
// once, and every blob there before is listed exactly once, across the
// listing's pages and whatever it read ahead.
func TestRefListingUnderChange(t *testing.T) {
	r := newRig(t)
	before := addRecords(t, r, "before", 3*listPage+123)
	d, err := os.Open(filepath.Join(r.dir, "ref"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got := readSome(t, d, listPage+500) // into the second page
	var added []string
	for round := range 4 {
		added = append(added, addRecords(t, r, fmt.Sprintf("during %d", round), 700)...)
		got = append(got, readSome(t, d, 900)...)
	}
	got = append(got, readSome(t, d, -1)...)
	checkListing(t, got, before, added)
	if !slices.IsSorted(got) {
		t.Error("ref/ is not listed in ref order")
	}

	// A listing started afterwards has them all.
	all, err := os.ReadDir(filepath.Join(r.dir, "ref"))
	if err != nil {
		t.Fatal(err)
	}
	if want := len(before) + len(added); len(all) != want {
		t.Fatalf("a new listing has %d entries, want %d", len(all), want)
	}
}

// TestRefListingRewind: a listing rewound part way (rewinddir, or a seek
// to 0) lists everything again, the written names first.
func TestRefListingRewind(t *testing.T) {
	r := newRig(t)
	before := addRecords(t, r, "before", 2*listPage+7)
	w, err := os.Create(r.ref("being-written"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	d, err := os.Open(filepath.Join(r.dir, "ref"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if first := readSome(t, d, listPage+3); first[0] != "being-written" {
		t.Fatalf("the listing starts with %q, want the written name first", first[0])
	}
	if _, err := d.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	checkListing(t, readSome(t, d, -1), append(before, "being-written"), nil)
}

// TestTreeListingUnderChange: the same for a directory of files/, with
// files created and removed while it is listed (a name removed may still
// be listed, once: the listing may have read it already).
func TestTreeListingUnderChange(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	c, err := r.meta.Collection(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := r.meta.Create(ctx, c.FolderIno, "big", &metastore.Inode{Kind: metastore.KindDir, Mode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	create := func(prefix string, n int) []string {
		var names []string
		for i := range n {
			name := fmt.Sprintf("%s%05d", prefix, i)
			if _, err := r.meta.Create(ctx, dir.Ino, name, &metastore.Inode{Kind: metastore.KindFile, Mode: 0o644}); err != nil {
				t.Fatal(err)
			}
			names = append(names, name)
		}
		return names
	}
	before := create("m", 2*listPage+50)
	d, err := os.Open(filepath.Join(r.dir, "files", "c", "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got := readSome(t, d, listPage+10)
	added := append(create("a", 300), create("z", 300)...) // before and after where the listing is
	last := before[len(before)-1]
	if _, err := r.meta.Remove(ctx, dir.Ino, last, false); err != nil {
		t.Fatal(err)
	}
	got = append(got, readSome(t, d, -1)...)
	checkListing(t, got, before[:len(before)-1], append(added, last))
}
