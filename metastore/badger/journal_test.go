package badger_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/badger"
)

func journal(t *testing.T, store *badger.Store) *badger.Journal {
	t.Helper()
	j, err := store.Journal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func recordBlob(t *testing.T, store *badger.Store, content string, volume int) blobstore.Ref {
	t.Helper()
	ref := blobstore.RefOf([]byte(content))
	meta := testMeta(ref)
	meta.RealSize, meta.SizeOnDisk = int64(len(content)), int64(len(content))+89
	if err := store.WriteBlobCreated(context.Background(), meta, volume); err != nil {
		t.Fatal(err)
	}
	return ref
}

func commitContent(t *testing.T, store *badger.Store, ino uint64, ref blobstore.Ref, size int64, mtime time.Time) {
	t.Helper()
	if _, err := store.CommitContent(context.Background(), ino, ref, size, size+89, mtime, nil); err != nil {
		t.Fatal(err)
	}
}

func commit(t *testing.T, store *badger.Store, syncVolumes func(context.Context) error) {
	t.Helper()
	if err := store.Commit(context.Background(), syncVolumes); err != nil {
		t.Fatal(err)
	}
}

func TestJournalEntriesWithRecords(t *testing.T) {
	store, _, _ := newStore(t)
	if j := journal(t, store); !j.Empty() {
		t.Fatalf("a new store's journal: %+v", j)
	}
	file := create(t, store, folder(t, store, "default"), "f", badger.KindFile)
	first := recordBlob(t, store, "first", 1)
	commitContent(t, store, file.Ino, first, 5, time.Unix(100, 0))
	j := journal(t, store)
	if len(j.Blobs) != 1 || j.Blobs[0].Ref != first || j.Blobs[0].Volume != 1 {
		t.Errorf("blob entries after one blob: %+v", j.Blobs)
	}
	if len(j.Contents) != 1 || j.Contents[0].Ino != file.Ino || j.Contents[0].Durable.Had || j.Contents[0].Newer != nil {
		t.Errorf("content entries after the first content of a new file: %+v", j.Contents)
	}

	// A second content before a Commit: the entry keeps the oldest (none).
	second := recordBlob(t, store, "second", 1)
	commitContent(t, store, file.Ino, second, 6, time.Unix(200, 0))
	if j := journal(t, store); len(j.Contents) != 1 || j.Contents[0].Durable.Had || j.Contents[0].Newer != nil || len(j.Blobs) != 2 {
		t.Errorf("after a second content: %+v", j)
	}

	commit(t, store, nil)
	if j := journal(t, store); !j.Empty() {
		t.Fatalf("journal after Commit: %+v", j)
	}

	// Content committed now keeps the durable one as the one before.
	third := recordBlob(t, store, "third", 1)
	commitContent(t, store, file.Ino, third, 5, time.Unix(300, 0))
	fourth := recordBlob(t, store, "fourth", 1)
	commitContent(t, store, file.Ino, fourth, 6, time.Unix(400, 0))
	j = journal(t, store)
	if len(j.Contents) != 1 || j.Contents[0].Newer != nil {
		t.Fatalf("content entries: %+v", j.Contents)
	}
	checkContent(t, "durable content", j.Contents[0].Durable, badger.Content{Had: true, Ref: second, Size: 6, StoredSize: 6 + 89, Mtime: time.Unix(200, 0)})
}

func checkContent(t *testing.T, what string, got, want badger.Content) {
	t.Helper()
	if got.Had != want.Had || got.Ref != want.Ref || got.Size != want.Size || got.StoredSize != want.StoredSize || !got.Mtime.Equal(want.Mtime) {
		t.Errorf("%s %+v, want %+v", what, got, want)
	}
}

func TestCommitKeepsWhatIsWrittenDuringIt(t *testing.T) {
	store, _, _ := newStore(t)
	file := create(t, store, folder(t, store, "default"), "f", badger.KindFile)
	before := recordBlob(t, store, "before", 1)
	commitContent(t, store, file.Ino, before, 6, time.Unix(100, 0))
	var during blobstore.Ref
	commit(t, store, func(ctx context.Context) error {
		// Stored while the volumes sync: not covered by this Commit.
		during = recordBlob(t, store, "during", 1)
		commitContent(t, store, file.Ino, during, 6, time.Unix(200, 0))
		return nil
	})
	j := journal(t, store)
	if len(j.Blobs) != 1 || j.Blobs[0].Ref != during {
		t.Errorf("blob entries after the Commit: %+v, want only %s", j.Blobs, during)
	}
	// The file was new before the Commit; what it had when the Commit
	// began is its newer content, durable now.
	if len(j.Contents) != 1 || j.Contents[0].Durable.Had || j.Contents[0].Newer == nil {
		t.Fatalf("content entries after the Commit: %+v, want one with a newer content", j.Contents)
	}
	checkContent(t, "newer content", *j.Contents[0].Newer, badger.Content{Had: true, Ref: before, Size: 6, StoredSize: 6 + 89, Mtime: time.Unix(100, 0)})
	commit(t, store, nil)
	if j := journal(t, store); !j.Empty() {
		t.Errorf("journal after a second Commit: %+v", j)
	}
}

func TestCommitThatFailsKeepsTheJournal(t *testing.T) {
	store, _, _ := newStore(t)
	recordBlob(t, store, "blob", 1)
	failure := errors.New("the disk is gone")
	if err := store.Commit(context.Background(), func(context.Context) error { return failure }); !errors.Is(err, failure) {
		t.Fatalf("Commit with a failing sync: %v", err)
	}
	if j := journal(t, store); len(j.Blobs) != 1 {
		t.Fatalf("journal after a failed Commit: %+v", j)
	}
	commit(t, store, nil)
	if j := journal(t, store); !j.Empty() {
		t.Errorf("journal after the next Commit: %+v", j)
	}
}

// An earlier process's entries were never covered by this one's syncs:
// Commit leaves them to Settle.
func TestCommitLeavesAnEarlierOpensEntries(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "meta")
	store, err := badger.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	initialize(t, store)
	old := recordBlob(t, store, "old", 1)
	recordBlob(t, store, "old too", 1)
	store.Close() // without a Commit: an unclean stop, as far as the journal knows
	if store, err = badger.Open(dir); err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	j := journal(t, store)
	if len(j.Blobs) != 2 {
		t.Fatalf("journal after reopening: %+v", j)
	}
	oldGen := max(j.Blobs[0].Generation, j.Blobs[1].Generation)
	fresh := recordBlob(t, store, "new", 1)
	for _, b := range journal(t, store).Blobs {
		if b.Ref == fresh && b.Generation <= oldGen {
			t.Errorf("an entry of this Open has generation %d, not above the earlier one's %d", b.Generation, oldGen)
		}
	}
	for range 3 {
		if err := store.Commit(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	j = journal(t, store)
	if len(j.Blobs) != 2 || (j.Blobs[0].Ref != old && j.Blobs[1].Ref != old) {
		t.Errorf("journal after Commits: %+v, want the earlier Open's two entries", j.Blobs)
	}
}

// Many writers and Commits at once: after each Commit, no entry is left
// of a write that returned before the Commit began.
func TestCommitWithConcurrentWriters(t *testing.T) {
	store, _, _ := newStore(t)
	root := folder(t, store, "default")
	var mu sync.Mutex
	done := map[blobstore.Ref]bool{} // writes that returned
	stop := make(chan struct{})
	var writers sync.WaitGroup
	for w := range 4 {
		file := create(t, store, root, string(rune('a'+w)), badger.KindFile)
		writers.Go(func() {
			ctx := context.Background()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ref := blobstore.RefOf(fmt.Appendf(nil, "%d-%d", w, i))
				if err := store.WriteBlobCreated(ctx, testMeta(ref), 1); err != nil {
					t.Error(err)
					return
				}
				if _, err := store.CommitContent(ctx, file.Ino, ref, 10, 99, time.Now(), nil); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				done[ref] = true
				mu.Unlock()
			}
		})
	}
	for range 20 {
		mu.Lock()
		before := make(map[blobstore.Ref]bool, len(done))
		for ref := range done {
			before[ref] = true
		}
		mu.Unlock()
		commit(t, store, func(context.Context) error { time.Sleep(time.Millisecond); return nil })
		for _, b := range journal(t, store).Blobs {
			if before[b.Ref] {
				t.Fatalf("blob %s, recorded before the Commit, is still journaled after it", b.Ref)
			}
		}
	}
	close(stop)
	writers.Wait()
}
