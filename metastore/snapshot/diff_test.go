package snapshot

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
)

// testDir describes a tree for a test: a name maps to a file's content
// (string) or a subdirectory (testDir).
type testDir map[string]any

// build stores the tree and returns its root tree ref.
func (d testDir) build(t *testing.T, store *memStore) blobstore.Ref {
	t.Helper()
	var entries []Entry
	for name, v := range d {
		e := Entry{Name: name, Ino: 1<<62 | uint64(len(name)), Mode: 0o755, Mtime: epoch, Ctime: epoch}
		switch v := v.(type) {
		case string:
			e.Kind, e.Mode, e.Size = KindFile, 0o644, int64(len(v))
			e.Ref, e.StoredSize = blobstore.RefOf([]byte(v)), int64(len(v)+89)
		case testDir:
			e.Kind, e.Ref = KindDir, v.build(t, store)
		}
		entries = append(entries, e)
	}
	root, err := BuildDir(context.Background(), entries, store.emit)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func diffLines(t *testing.T, loadA Loader, rootA blobstore.Ref, loadB Loader, rootB blobstore.Ref) []string {
	t.Helper()
	var lines []string
	err := Diff(context.Background(), loadA, rootA, loadB, rootB, func(c Change) error {
		lines = append(lines, fmt.Sprintf("%s %s", c.Kind, c.Path))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestDiff(t *testing.T) {
	before := testDir{
		"a":    "1",
		"keep": testDir{"x": "x", "y": testDir{"z": "z"}},
		"gone": testDir{"f": "f", "g": testDir{"h": "h"}},
		"mod":  testDir{"f": "old", "same": "s"},
		"kind": testDir{"f": "f"},
		"z":    "z",
	}
	after := testDir{
		"a":    "1",
		"keep": testDir{"x": "x", "y": testDir{"z": "z"}},
		"mod":  testDir{"f": "new", "same": "s", "added": testDir{"n": "n"}},
		"kind": "now a file",
		"new":  "n",
		"z":    "z",
	}
	store := newMemStore()
	rootA, rootB := before.build(t, store), after.build(t, store)
	got := diffLines(t, store.load, rootA, store.load, rootB)
	want := []string{
		"removed gone", "removed gone/f", "removed gone/g", "removed gone/g/h",
		"modified kind", "removed kind/f",
		"added mod/added", "added mod/added/n", "modified mod/f",
		"added new",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	back := diffLines(t, store.load, rootB, store.load, rootA)
	if len(back) != len(want) || back[0] != "added gone" {
		t.Fatalf("reverse diff: %v", back)
	}
	if same := diffLines(t, store.load, rootA, store.load, rootA); len(same) != 0 {
		t.Fatalf("a tree differs from itself: %v", same)
	}
}

// countingLoader counts the blobs it hands out.
func countingLoader(load Loader, count *atomic.Int64) Loader {
	return func(ctx context.Context, ref blobstore.Ref) ([]byte, error) {
		count.Add(1)
		return load(ctx, ref)
	}
}

// TestDiffLargeDirSkipsSharedBlobs changes one entry of a large directory:
// Diff must find it loading only the few blobs on its path.
func TestDiffLargeDirSkipsSharedBlobs(t *testing.T) {
	const n = 60_000
	store := newMemStore()
	rootA := buildBig(t, n, store.emit, nil)
	blobsA := len(store.blobs)
	rootB := buildBig(t, n, store.emit, func(i int, e *Entry) []Entry {
		if i == n/3 {
			e.Size++
			return []Entry{*e, fileEntry(bigName(i)+"-inserted", i)}
		}
		if i == 2*n/3 {
			return nil
		}
		return []Entry{*e}
	})
	var loads atomic.Int64
	got := diffLines(t, countingLoader(store.load, &loads), rootA, store.load, rootB)
	want := []string{
		"modified " + bigName(n/3), "added " + bigName(n/3) + "-inserted", "removed " + bigName(2*n/3),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("diff = %v, want %v", got, want)
	}
	t.Logf("%d blobs per tree; diff loaded %d of the first tree's", blobsA, loads.Load())
	if loads.Load() > 12 {
		t.Fatalf("diff loaded %d of %d blobs", loads.Load(), blobsA)
	}
}
