package snapshot

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
)

// readAll lists a directory through a Cursor.
func readAll(t testing.TB, load Loader, root blobstore.Ref, skip uint64) []Entry {
	t.Helper()
	ctx := context.Background()
	c, err := NewReader(load, root).Entries(ctx, skip)
	if err != nil {
		t.Fatal(err)
	}
	var out []Entry
	for {
		e, err := c.Next(ctx)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
}

func TestWriterSmallDirIsOneLeaf(t *testing.T) {
	store := newMemStore()
	entries := sampleEntries()
	root, err := BuildDir(context.Background(), entries, store.emit)
	if err != nil {
		t.Fatal(err)
	}
	if len(store.blobs) != 1 {
		t.Fatalf("%d blobs for %d entries, want one leaf", len(store.blobs), len(entries))
	}
	n, err := DecodeNode(store.blobs[root])
	if err != nil {
		t.Fatal(err)
	}
	want, _ := EncodeNode(n)
	if string(want) != string(store.blobs[root]) {
		t.Fatal("the Writer's leaf differs from EncodeNode's")
	}
	if got := readAll(t, store.load, root, 0); len(got) != len(entries) {
		t.Fatalf("read back %d entries, want %d", len(got), len(entries))
	}
}

func TestWriterEmptyDir(t *testing.T) {
	store := newMemStore()
	root, err := NewWriter(store.emit).Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := EncodeNode(&Node{}); root != blobstore.RefOf(want) {
		t.Fatal("an empty directory's root is not the empty leaf")
	}
	if got := readAll(t, store.load, root, 0); len(got) != 0 {
		t.Fatalf("empty directory lists %d entries", len(got))
	}
}

// TestWriterLargeDir builds a directory of several levels and reads it
// back whole, from offsets, and by name.
func TestWriterLargeDir(t *testing.T) {
	const n = 40_000
	store := newMemStore()
	root := buildBig(t, n, store.emit, nil)
	top, _ := DecodeNode(store.blobs[root])
	if top.Level < 1 || len(store.blobs) < 50 {
		t.Fatalf("%d entries in %d blobs under a root of level %d: not split", n, len(store.blobs), top.Level)
	}
	for ref, b := range store.blobs {
		if len(b) > headerSize+maxBody {
			t.Fatalf("blob %s of %d bytes, more than the cap", ref, len(b))
		}
	}
	got := readAll(t, store.load, root, 0)
	if len(got) != n {
		t.Fatalf("read %d entries, want %d", len(got), n)
	}
	for i, e := range got {
		if want := fileEntry(bigName(i), i); !e.Equal(&want) {
			t.Fatalf("entry %d is %+v, want %+v", i, e, want)
		}
	}
	checkRandomAccess(t, NewReader(store.load, root), n)
	var loads atomic.Int64
	if _, err := NewReader(countingLoader(store.load, &loads), root).Lookup(context.Background(), bigName(n/2)); err != nil ||
		loads.Load() != int64(top.Level+1) {
		t.Fatalf("a lookup loaded %d blobs of a tree of %d levels (%v)", loads.Load(), top.Level+1, err)
	}
	if tail := readAll(t, store.load, root, n+5); len(tail) != 0 {
		t.Fatalf("past the end: %d entries", len(tail))
	}
}

// checkRandomAccess reads a generated directory of n entries by offset
// and by name.
func checkRandomAccess(t *testing.T, r *Reader, n int) {
	t.Helper()
	ctx := context.Background()
	if count, err := r.Len(ctx); err != nil || count != uint64(n) {
		t.Fatalf("Len = %d, %v", count, err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		i := rng.IntN(n)
		c, err := r.Entries(ctx, uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		for j := i; j < min(i+3, n); j++ {
			if e, err := c.Next(ctx); err != nil || e.Name != bigName(j) {
				t.Fatalf("entry %d of a cursor from %d: %q, %v", j, i, e.Name, err)
			}
		}
		e, err := r.Lookup(ctx, bigName(i))
		if err != nil || e.Name != bigName(i) {
			t.Fatalf("Lookup(%q) = %q, %v", bigName(i), e.Name, err)
		}
	}
	for _, missing := range []string{"", "a", bigName(n), bigName(5) + "x", "zzz"} {
		if _, err := r.Lookup(ctx, missing); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Lookup(%q) = %v, want fs.ErrNotExist", missing, err)
		}
	}
}

func TestWriterRefusesDisorder(t *testing.T) {
	ctx := context.Background()
	w := NewWriter(newMemStore().emit)
	if err := w.Add(ctx, fileEntry("b", 1)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if err := w.Add(ctx, fileEntry(name, 2)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Add(%q) after \"b\" = %v, want ErrInvalid", name, err)
		}
	}
	if err := w.Add(ctx, fileEntry("c", 3)); err != nil {
		t.Fatalf("a refused entry broke the writer: %v", err)
	}
	if _, err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(ctx, fileEntry("d", 4)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Add after Finish = %v", err)
	}
}

func TestWriterEmitErrorFails(t *testing.T) {
	boom := errors.New("disk full")
	calls := 0
	w := NewWriter(func(context.Context, blobstore.Ref, []byte) error {
		calls++
		return boom
	})
	ctx := context.Background()
	var err error
	for i := 0; err == nil && i < 10_000; i++ {
		err = w.Add(ctx, fileEntry(bigName(i), i))
	}
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("Add = %v after %d emits, want the emit error after one", err, calls)
	}
	if _, err := w.Finish(ctx); err == nil {
		t.Fatal("Finish on a failed writer succeeded")
	}
}
