package badger_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
)

// contentCommit is one new blob committed as a file's content.
type contentCommit struct {
	file    int // index of the file
	content string
	mode    uint32 // held attributes applied in the commit (0: none)
	commit  bool   // a group commit first (the journal entry gets a newer content)
}

// contentCommits cover a new file, a second content before a group
// commit, a content after one, and held attributes.
var contentCommits = []contentCommit{
	{file: 0, content: "first"},
	{file: 1, content: "other", mode: 0o600},
	{file: 0, content: "second"},
	{file: 0, content: "third", commit: true},
	{file: 1, content: "fourth", mode: 0o640},
}

func newMeta(content string) *diskaccess.BlobMeta {
	meta := testMeta(blobstore.RefOf([]byte(content)))
	meta.RealSize, meta.SizeOnDisk = int64(len(content)), int64(len(content))+89
	return meta
}

// runContentCommits creates two files, then commits contentCommits to
// them with commit, and returns what the store holds before the commits
// and after.
func runContentCommits(t *testing.T, commit func(store *badger.Store, ino uint64, meta *diskaccess.BlobMeta, mtime time.Time, attrs func(*badger.Inode)) (*badger.Inode, error)) (store *badger.Store, before, after map[string]string) {
	t.Helper()
	ctx := context.Background()
	store, _, _ = newStore(t)
	root := folder(t, store, "default")
	files := []*badger.Inode{create(t, store, root, "a", badger.KindFile), create(t, store, root, "b", badger.KindFile)}
	before = contents(t, store)
	for i, c := range contentCommits {
		if c.commit {
			if err := store.Commit(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}
		var attrs func(*badger.Inode)
		if c.mode != 0 {
			attrs = func(n *badger.Inode) { n.Mode = c.mode }
		}
		n, err := commit(store, files[c.file].Ino, newMeta(c.content), time.Unix(int64(1000+i), 0), attrs)
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		if n.Ref != blobstore.RefOf([]byte(c.content)) || n.Size != int64(len(c.content)) || !n.Committed || (c.mode != 0 && n.Mode != c.mode) {
			t.Fatalf("commit %d returned %+v", i, n)
		}
	}
	return store, before, contents(t, store)
}

func contents(t *testing.T, store *badger.Store) map[string]string {
	t.Helper()
	c, err := badger.ContentsForTest(store)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// changes is what after changed from before: key -> value ("" removed).
func changes(before, after map[string]string) map[string]string {
	changed := map[string]string{}
	for key, value := range after {
		if old, ok := before[key]; !ok || old != value {
			changed[key] = value
		}
	}
	for key := range before {
		if _, ok := after[key]; !ok {
			changed[key] = ""
		}
	}
	return changed
}

// TestCommitNewContentWritesWhatTheTwoCallsDo: WriteBlobCreated then
// CommitContent on one store, CommitNewContent on another, make the same
// changes: records, volume index and counts, index marks, journal
// entries, inodes, ref uses, stamps.
func TestCommitNewContentWritesWhatTheTwoCallsDo(t *testing.T) {
	ctx := context.Background()
	_, before1, after1 := runContentCommits(t, func(store *badger.Store, ino uint64, meta *diskaccess.BlobMeta, mtime time.Time, attrs func(*badger.Inode)) (*badger.Inode, error) {
		if err := store.WriteBlobCreated(ctx, meta, 1); err != nil {
			return nil, err
		}
		return store.CommitContent(ctx, ino, meta.Ref, meta.RealSize, meta.SizeOnDisk, mtime, attrs)
	})
	combined, before2, after2 := runContentCommits(t, func(store *badger.Store, ino uint64, meta *diskaccess.BlobMeta, mtime time.Time, attrs func(*badger.Inode)) (*badger.Inode, error) {
		return store.CommitNewContent(ctx, ino, meta, 1, meta.RealSize, mtime, attrs)
	})
	separate, together := changes(before1, after1), changes(before2, after2)
	for _, d := range diffKeys(separate, together) {
		t.Error(d)
	}
	// Not vacuous: every kind of write is among the changes (a stamp,
	// evened out, reads the same before and after).
	for _, prefix := range []string{"b", "v", "n", "x", "jb", "ji", "i", "r", "u"} {
		if !hasPrefix(together, prefix) {
			t.Errorf("no change under %q", prefix)
		}
	}
	j := journal(t, combined)
	if len(j.Blobs) != 2 || len(j.Contents) != 2 {
		t.Errorf("journal after the last group commit: %d blob and %d content entries, want 2 and 2", len(j.Blobs), len(j.Contents))
	}
}

// TestCommitNewContentFailureWritesNothing: a file that is gone, or a
// blob already recorded, fail the call, and it writes nothing at all.
func TestCommitNewContentFailureWritesNothing(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	root := folder(t, store, "default")
	gone := create(t, store, root, "gone", badger.KindFile)
	if _, err := store.Remove(ctx, root, "gone", false); err != nil {
		t.Fatal(err)
	}
	file := create(t, store, root, "f", badger.KindFile)
	known := newMeta("known")
	if err := store.WriteBlobCreated(ctx, known, 1); err != nil {
		t.Fatal(err)
	}
	before := contents(t, store)
	if _, err := store.CommitNewContent(ctx, gone.Ino, newMeta("new"), 1, 3, time.Now(), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CommitNewContent to a removed file: %v, want fs.ErrNotExist", err)
	}
	if _, err := store.CommitNewContent(ctx, file.Ino, known, 1, 5, time.Now(), nil); err == nil {
		t.Error("CommitNewContent of a blob already recorded succeeded")
	}
	for _, d := range diffKeys(before, contents(t, store)) {
		t.Errorf("a failed CommitNewContent changed the store: %s", d)
	}
}

// diffKeys describes how b differs from a.
func diffKeys(a, b map[string]string) []string {
	var diffs []string
	for key, value := range a {
		if other, ok := b[key]; !ok {
			diffs = append(diffs, fmt.Sprintf("key %x only in the first", key))
		} else if other != value {
			diffs = append(diffs, fmt.Sprintf("key %x: %x, then %x", key, value, other))
		}
	}
	for key := range b {
		if _, ok := a[key]; !ok {
			diffs = append(diffs, fmt.Sprintf("key %x only in the second", key))
		}
	}
	sort.Strings(diffs)
	return diffs
}

func hasPrefix(m map[string]string, prefix string) bool {
	for key := range m {
		if len(key) >= len(prefix) && key[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

// BenchmarkNewFileContent is the metadata cost of a new file's content at
// close, per file: a new blob recorded and committed as the content of a
// file just created, in two transactions (WriteBlobCreated, then
// CommitContent) or in one (CommitNewContent).
func BenchmarkNewFileContent(b *testing.B) {
	for _, bc := range []struct {
		name   string
		commit func(store *badger.Store, ino uint64, meta *diskaccess.BlobMeta, mtime time.Time) error
	}{
		{"separate", func(store *badger.Store, ino uint64, meta *diskaccess.BlobMeta, mtime time.Time) error {
			if err := store.WriteBlobCreated(context.Background(), meta, 1); err != nil {
				return err
			}
			_, err := store.CommitContent(context.Background(), ino, meta.Ref, meta.RealSize, meta.SizeOnDisk, mtime, nil)
			return err
		}},
		{"combined", func(store *badger.Store, ino uint64, meta *diskaccess.BlobMeta, mtime time.Time) error {
			_, err := store.CommitNewContent(context.Background(), ino, meta, 1, meta.RealSize, mtime, nil)
			return err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			store, _, _ := newStore(b)
			root := folder(b, store, "default")
			inos := make([]uint64, b.N)
			metas := make([]*diskaccess.BlobMeta, b.N)
			for i := range b.N {
				inos[i] = create(b, store, root, fmt.Sprintf("f%07d", i), badger.KindFile).Ino
				metas[i] = newMeta(fmt.Sprintf("content %d", i))
			}
			mtime := time.Unix(1000, 0)
			b.ResetTimer()
			for i := range b.N {
				if err := bc.commit(store, inos[i], metas[i], mtime); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
