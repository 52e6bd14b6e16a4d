package snapshot

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
)

func goldenBytes(t *testing.T, name string) []byte {
	t.Helper()
	b, err := readTestdata(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readTestdata(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", name))
}

// tampered returns every single-bit flip, cut and extension of b.
func tampered(b []byte) [][]byte {
	var out [][]byte
	for i := range b {
		for bit := range 8 {
			flipped := append([]byte(nil), b...)
			flipped[i] ^= 1 << bit
			out = append(out, flipped)
		}
		out = append(out, b[:i])
	}
	for _, tail := range [][]byte{{0}, {1, 0}, b[min(headerSize, len(b)):], b} {
		if len(tail) > 0 {
			out = append(out, append(append([]byte(nil), b...), tail...))
		}
	}
	return out
}

// TestTamperedTreeBlobs: under the ref it was written with, a changed tree
// blob never loads. Decoded on its own, it fails or decodes canonically
// (to a different listing, whose ref differs), and never panics.
func TestTamperedTreeBlobs(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"leaf-one.tree", "leaf-sample.tree", "leaf-special.tree", "index.tree", "leaf-empty.tree"} {
		good := goldenBytes(t, name)
		ref := blobstore.RefOf(good)
		for _, bad := range tampered(good) {
			load := func(context.Context, blobstore.Ref) ([]byte, error) { return bad, nil }
			_, err := NewReader(load, ref).Entries(ctx, 0)
			var treeErr *TreeError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &treeErr) || treeErr.Ref != ref {
				t.Fatalf("%s tampered (%d bytes) loads under its old ref: %v", name, len(bad), err)
			}
			n, err := DecodeNode(bad)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
					t.Fatalf("%s tampered: error %v wraps neither ErrCorrupt nor ErrUnsupported", name, err)
				}
				continue
			}
			if again, err := EncodeNode(n); err != nil || string(again) != string(bad) {
				t.Fatalf("%s tampered decodes to a node that encodes otherwise (%v)", name, err)
			}
		}
	}
}

func TestTamperedRecords(t *testing.T) {
	good := goldenBytes(t, "record.snap")
	for _, bad := range tampered(good) {
		r, err := DecodeRecord(bad)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v wraps neither ErrCorrupt nor ErrUnsupported", err)
			}
			continue
		}
		// A flip can turn the last field's tag into an unknown optional
		// one, which a reader skips: then, and only then, the record
		// re-encodes shorter.
		again, err := EncodeRecord(r)
		if err != nil || string(again) != string(bad) && (len(again) >= len(bad) || r.Writer != "") {
			t.Fatalf("a tampered record decodes to one that encodes otherwise (%v)", err)
		}
	}
}

// TestSwappedBlobs: a loader that hands back another tree blob's bytes
// (a wrong ref, a swapped file) is caught, naming the ref asked for.
func TestSwappedBlobs(t *testing.T) {
	store := newMemStore()
	root := buildBig(t, 5000, store.emit, nil)
	top, _ := DecodeNode(store.blobs[root])
	victim, other := top.Children[1].Ref, top.Children[2].Ref
	load := func(ctx context.Context, ref blobstore.Ref) ([]byte, error) {
		if ref == victim {
			ref = other
		}
		return store.load(ctx, ref)
	}
	c, err := NewReader(load, root).Entries(context.Background(), 0)
	for err == nil {
		_, err = c.Next(context.Background())
	}
	var treeErr *TreeError
	if !errors.As(err, &treeErr) || treeErr.Ref != victim || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("reading through a swapped blob: %v", err)
	}
}

// TestForgedIndex: index nodes that hash correctly (written by a buggy or
// hostile key holder) but do not describe their children are refused when
// the children are read, by cursor and by lookup alike.
func TestForgedIndex(t *testing.T) {
	store := newMemStore()
	root := buildBig(t, 5000, store.emit, nil)
	top, _ := DecodeNode(store.blobs[root])
	leaf := top.Children[3]
	ctx := context.Background()
	for name, forge := range map[string]func(n *Node){
		"count":       func(n *Node) { n.Children[3].Count++ },
		"first name":  func(n *Node) { n.Children[3].First = leaf.First + "0" },
		"first later": func(n *Node) { n.Children[3].First = n.Children[2].First + "~" },
		"overlap":     func(n *Node) { n.Children[4].First = leaf.First + "1" },
		"level":       func(n *Node) { n.Level = 2 },
		"leaf twice":  func(n *Node) { n.Children[4].Ref = leaf.Ref },
	} {
		forged := &Node{Level: top.Level, Children: append([]Child(nil), top.Children...)}
		forge(forged)
		b, err := EncodeNode(forged)
		if err != nil {
			t.Fatal(err)
		}
		forgedRoot := blobstore.RefOf(b)
		store.blobs[forgedRoot] = b
		c, err := NewReader(store.load, forgedRoot).Entries(ctx, 0)
		for err == nil {
			_, err = c.Next(ctx)
		}
		if err == io.EOF || !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: reading a forged index: %v, want ErrCorrupt", name, err)
		}
		if _, err := NewReader(store.load, forgedRoot).Lookup(ctx, bigName(int(leaf.Count)*3+1)); name != "overlap" && name != "leaf twice" && !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: lookup through a forged index: %v, want ErrCorrupt", name, err)
		}
	}
}
