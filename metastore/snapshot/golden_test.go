package snapshot

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/")

// goldenNodes are the tree blobs pinned in testdata/ and in the byte
// tables of docs/format.md.
func goldenNodes() map[string]*Node {
	sample := sampleEntries()
	slices.SortFunc(sample, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	one := Entry{Name: "a", Kind: KindFile, Ino: 1<<62 | 2, Mode: 0o644, UID: 1000, GID: 1000, Size: 5,
		Mtime: epoch, Ctime: epoch, Ref: blobstore.RefOf([]byte("hello")), StoredSize: 94}
	return map[string]*Node{
		"leaf-empty":  {},
		"leaf-one":    {Entries: []Entry{one}},
		"leaf-sample": {Entries: sample},
		"leaf-special": {Entries: []Entry{
			{Name: "block", Kind: KindBlockDev, Ino: 1<<62 | 9, Mode: 0o660, GID: 6, Mtime: epoch, Ctime: epoch, Rdev: 7<<8 | 1},
			{Name: "char", Kind: KindCharDev, Ino: 1<<62 | 8, Mode: 0o666, Mtime: epoch, Ctime: epoch, Rdev: 1<<8 | 3},
			{Name: "fifo", Kind: KindFifo, Ino: 1<<62 | 6, Mode: 0o644, UID: 1000, GID: 1000, Mtime: epoch, Ctime: epoch},
			{Name: "null0", Kind: KindCharDev, Ino: 1<<62 | 10, Mode: 0o600, Mtime: epoch, Ctime: epoch},
			{Name: "socket", Kind: KindSocket, Ino: 1<<62 | 7, Mode: 0o755, UID: 1000, GID: 1000, Mtime: epoch, Ctime: epoch},
		}},
		"leaf-links": {Entries: []Entry{
			{Name: "a", Kind: KindFile, Ino: 1<<62 | 2, Mode: 0o644, UID: 1000, GID: 1000, Size: 5,
				Mtime: epoch, Ctime: epoch, Ref: blobstore.RefOf([]byte("hello")), StoredSize: 94, Nlink: 2},
			{Name: "b", Kind: KindFile, Ino: 1<<62 | 2, Mode: 0o644, UID: 1000, GID: 1000, Size: 5,
				Mtime: epoch, Ctime: epoch, Ref: blobstore.RefOf([]byte("hello")), StoredSize: 94, Nlink: 2},
		}},
		"leaf-xattrs": {Entries: []Entry{
			{Name: "d", Kind: KindDir, Ino: 1<<62 | 3, Mode: 0o755, Mtime: epoch, Ctime: epoch,
				Ref: blobstore.RefOf([]byte("a tree")), Xattrs: []Xattr{{Name: "user.empty"}, {Name: "user.mime_type", Value: []byte("inode/directory")}}},
			{Name: "f", Kind: KindFile, Ino: 1<<62 | 2, Mode: 0o644, Size: 5, Mtime: epoch, Ctime: epoch,
				Ref: blobstore.RefOf([]byte("hello")), StoredSize: 94, Nlink: 2, Xattrs: []Xattr{{Name: "user.a", Value: []byte{0, 1, 2}}}},
			{Name: "g", Kind: KindFile, Ino: 1<<62 | 2, Mode: 0o644, Size: 5, Mtime: epoch, Ctime: epoch,
				Ref: blobstore.RefOf([]byte("hello")), StoredSize: 94, Nlink: 2, Xattrs: []Xattr{{Name: "user.a", Value: []byte{0, 1, 2}}}},
		}},
		"index": {Level: 1, Children: []Child{
			{First: "a", Ref: blobstore.RefOf([]byte("first leaf")), Count: 480},
			{First: "m", Ref: blobstore.RefOf([]byte("second leaf")), Count: 3},
		}},
	}
}

// checkGolden compares got with testdata/name, rewriting it under -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding gives %d bytes that differ from %s (%d bytes): the format changed", len(got), path, len(want))
	}
}

// TestGoldenVectors pins the tree and record encodings: encoding the
// vectors must give exactly the bytes in testdata/, and those must decode
// to the vectors. Run with -update only for a new format version.
func TestGoldenVectors(t *testing.T) {
	for name, n := range goldenNodes() {
		t.Run(name, func(t *testing.T) {
			b, err := EncodeNode(n)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, name+".tree", b)
			if got, err := DecodeNode(b); err != nil || !sameNode(got, n) {
				t.Fatalf("decoding %s: %v", name, err)
			}
		})
	}
	t.Run("record", func(t *testing.T) {
		b, err := EncodeRecord(sampleRecord())
		if err != nil {
			t.Fatal(err)
		}
		checkGolden(t, "record.snap", b)
	})
}

// TestGoldenSplit pins where the Writer cuts a listing: the blobs of a
// generated 5 000-entry directory, in the order emitted, and its root.
// Other cuts would still read back, but would not dedup against trees
// written before.
func TestGoldenSplit(t *testing.T) {
	var out bytes.Buffer
	root := buildBig(t, 5000, func(_ context.Context, ref blobstore.Ref, plain []byte) error {
		n, err := DecodeNode(plain)
		if err != nil {
			return err
		}
		first, _, _ := n.nameRange()
		fmt.Fprintf(&out, "%s level %d, %d items, %d bytes, from %s\n", ref, n.Level, len(n.Entries)+len(n.Children), len(plain), first)
		return nil
	}, nil)
	fmt.Fprintf(&out, "root %s\n", root)
	checkGolden(t, "split-5000.txt", out.Bytes())
}
