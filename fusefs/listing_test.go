package fusefs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
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
	dir, create := bigDir(t, r)
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

// bigDir makes files/c/big in r's store, and returns its inode and a
// function that makes n empty files in it (prefix and a number) through
// the store, not the mount.
func bigDir(t *testing.T, r *rig) (*metastore.Inode, func(prefix string, n int) []string) {
	t.Helper()
	ctx := context.Background()
	c, err := r.meta.Collection(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := r.meta.Create(ctx, c.FolderIno, "big", &metastore.Inode{Kind: metastore.KindDir, Mode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	return dir, func(prefix string, n int) []string {
		var names []string
		for i := range n {
			name := fmt.Sprintf("%s%05d", prefix, i)
			if _, err := r.meta.Create(ctx, dir.Ino, name, &metastore.Inode{Kind: metastore.KindFile, Mode: 0o644, Size: int64(i)}); err != nil {
				t.Fatal(err)
			}
			names = append(names, name)
		}
		return names
	}
}

// TestListingLooksUpFresh: READDIRPLUS replies carry each entry's
// attributes, looked up a reply's worth at a time. Files removed through
// the mount while their directory is listed, after the listing read their
// names from the store but before a reply gave them to the kernel, stay
// removed: the reply that lists them (a listing may) does not bring them
// back for stat to find. And a reader whose buffer is smaller than the
// kernel's requests, stat'ing as it lists (the kernel switches between
// READDIR and READDIRPLUS, and asks again for what the reader's buffer
// did not take), misses nothing: with a READDIR reply larger than a
// READDIRPLUS one could be, go-fuse loses the entries that do not fit.
func TestListingLooksUpFresh(t *testing.T) {
	r := newRig(t)
	_, create := bigDir(t, r)
	names := create("f", 2*listPage+50)
	path := filepath.Join(r.dir, "files", "c", "big")
	d, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// ls -l: a stat of what was listed, then the next entries; the
	// kernel asks for READDIRPLUS after its entries were looked up. A
	// small buffer, so that each getdents(2) is one request.
	var got []string
	buf := make([]byte, 1024)
	lsl := func() int {
		n, err := syscall.Getdents(int(d.Fd()), buf)
		if err != nil {
			t.Fatal(err)
		}
		_, _, some := syscall.ParseDirent(buf[:n], -1, nil)
		for _, name := range some {
			if _, err := os.Lstat(filepath.Join(path, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
		}
		got = append(got, some...)
		return len(some)
	}
	for len(got) < 200 {
		lsl()
	}
	removed := names[1000:1040] // in the page the listing has read, not yet listed
	for _, name := range removed {
		if err := os.Remove(filepath.Join(path, name)); err != nil {
			t.Fatal(err)
		}
	}
	for lsl() > 0 {
	}
	checkListing(t, got, slices.DeleteFunc(slices.Clone(names), func(n string) bool { return slices.Contains(removed, n) }), removed)
	for _, name := range removed {
		if _, err := os.Lstat(filepath.Join(path, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stat of %s, removed during the listing: %v, want ENOENT", name, err)
		}
	}
	// And the attributes READDIRPLUS gave are the files': sizes 0, 1, 2...
	for _, i := range []int{0, 1, 999, 1040, listPage, 2*listPage + 49} {
		info, err := os.Lstat(filepath.Join(path, names[i]))
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() != int64(i) || info.Mode() != 0o644 {
			t.Errorf("%s: size %d mode %v, want %d and -rw-r--r--", names[i], info.Size(), info.Mode(), i)
		}
	}
}
