package badger_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
)

// checkBy answers a Settle's checks from a table (intact when absent) and
// counts them.
type checkBy map[blobstore.Ref]badger.CopyState

func (c checkBy) check(calls *int) badger.CopyCheck {
	return func(ctx context.Context, meta *diskaccess.BlobMeta, volume int) (badger.CopyState, error) {
		*calls++
		return c[meta.Ref], nil
	}
}

func settle(t *testing.T, store *badger.Store, states checkBy) (*badger.SettleResult, int) {
	t.Helper()
	calls := 0
	result, err := store.Settle(context.Background(), states.check(&calls))
	if err != nil {
		t.Fatal(err)
	}
	return result, calls
}

// outcomes are the files' outcomes by path, or by inode number for
// those that have none (kept and gone files are not named).
func outcomes(result *badger.SettleResult) map[string]badger.FileOutcome {
	got := map[string]badger.FileOutcome{}
	for _, f := range result.Files {
		name := f.Path
		if name == "" {
			name = fmt.Sprint(f.Ino)
		}
		got[name] = f.Outcome
	}
	return got
}

func dirStamp(t *testing.T, store *badger.Store, dir uint64) uint64 {
	t.Helper()
	var stamp uint64
	err := store.ViewTree(context.Background(), func(v *badger.TreeView) (err error) {
		stamp, _, _, err = v.DirTree(dir)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return stamp
}

func TestSettleCleanJournal(t *testing.T) {
	store, _, _ := newStore(t)
	result, calls := settle(t, store, nil)
	if !result.Clean || calls != 0 {
		t.Errorf("Settle of an empty journal: %+v, %d checks", result, calls)
	}
}

func TestSettle(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	if _, err := store.AddVolume(ctx, badger.Volume{Label: "v", UUID: "u", Driver: "localfs"}); err != nil {
		t.Fatal(err)
	}
	root := folder(t, store, "default")
	dir := create(t, store, root, "dir", badger.KindDir)
	rewritten := create(t, store, dir.Ino, "rewritten", badger.KindFile)
	kept := create(t, store, dir.Ino, "kept", badger.KindFile)
	removedSince := create(t, store, dir.Ino, "removed since", badger.KindFile)
	durable := recordBlob(t, store, "durable", 1)
	commitContent(t, store, rewritten.Ino, durable, 7, time.Unix(100, 0))
	commitContent(t, store, kept.Ino, durable, 7, time.Unix(100, 0))
	commit(t, store, nil)

	// Since the last Commit:
	lost := recordBlob(t, store, "lost", 1)
	intact := recordBlob(t, store, "intact", 1)
	commitContent(t, store, rewritten.Ino, lost, 4, time.Unix(200, 0))
	fresh := create(t, store, dir.Ino, "new", badger.KindFile)
	commitContent(t, store, fresh.Ino, lost, 4, time.Unix(200, 0))
	commitContent(t, store, kept.Ino, intact, 6, time.Unix(200, 0))
	commitContent(t, store, removedSince.Ino, lost, 4, time.Unix(200, 0))
	if _, err := store.Remove(ctx, dir.Ino, "removed since", false); err != nil {
		t.Fatal(err)
	}
	before, err := store.VolumeByID(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	stamp := dirStamp(t, store, dir.Ino)

	result, calls := settle(t, store, checkBy{lost: badger.CopyMissing})
	if result.Clean || calls != 2 {
		t.Fatalf("Settle: %+v after %d checks", result, calls)
	}
	want := map[string]badger.FileOutcome{"default/dir/rewritten": badger.FileReverted, "default/dir/new": badger.FileRemoved,
		fmt.Sprint(kept.Ino): badger.FileKept, fmt.Sprint(removedSince.Ino): badger.FileGone}
	if got := outcomes(result); len(got) != len(want) {
		t.Errorf("outcomes %v, want %v", got, want)
	} else {
		for path, outcome := range want {
			if got[path] != outcome {
				t.Errorf("%q: %v, want %v", path, got[path], outcome)
			}
		}
	}
	for _, b := range result.Blobs {
		if b.Ref == lost && (b.State != badger.CopyMissing || !b.Dropped) {
			t.Errorf("the lost blob: %+v", b)
		}
	}

	// The lost blob is gone from the metadata, with its volume's counts.
	if found, _ := store.QueryBlobExists(ctx, lost); found {
		t.Error("the lost blob is still recorded")
	}
	after, err := store.VolumeByID(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if after.BlobCount != before.BlobCount-1 || after.Bytes != before.Bytes-(4+89) {
		t.Errorf("volume counts %d blobs %d bytes, were %d and %d", after.BlobCount, after.Bytes, before.BlobCount, before.Bytes)
	}
	err = store.ListVolumeBlobs(ctx, 1, blobstore.Ref{}, func(ref blobstore.Ref) error {
		if ref == lost {
			t.Error("the volume's index still lists the lost blob")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = store.IndexChanges(ctx, testMeta(lost).EncryptionKeyId, func(b badger.IndexedBlob) error {
		if b.Ref == lost {
			t.Error("the lost blob is still marked for the blob index")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The tree: back to the durable content, the new file gone.
	n, err := store.Lookup(ctx, dir.Ino, "rewritten")
	if err != nil || n.Ref != durable || n.Size != 7 || n.StoredSize != 7+89 || !n.Mtime.Equal(time.Unix(100, 0)) {
		t.Errorf("the rewritten file: %+v, %v", n, err)
	}
	if n, err := store.Lookup(ctx, dir.Ino, "kept"); err != nil || n.Ref != intact {
		t.Errorf("the kept file: %+v, %v", n, err)
	}
	if _, err := store.Lookup(ctx, dir.Ino, "new"); !isNotExist(err) {
		t.Errorf("the new file: %v", err)
	}
	if _, err := store.Inode(ctx, fresh.Ino); !isNotExist(err) {
		t.Errorf("the new file's inode: %v", err)
	}
	if got := names(t, store, dir.Ino); len(got) != 2 {
		t.Errorf("directory holds %v", got)
	}
	if users, _ := store.FilesUsing(ctx, lost); users != 0 {
		t.Errorf("%d files use the lost blob", users)
	}
	if users, _ := store.FilesUsing(ctx, durable); users != 1 {
		t.Errorf("%d files use the durable blob, want 1", users)
	}
	if dirStamp(t, store, dir.Ino) == stamp {
		t.Error("the directory's stamp did not move: a snapshot would not see the change")
	}
	if j := journal(t, store); !j.Empty() {
		t.Errorf("journal after Settle: %+v", j)
	}
	if result, _ := settle(t, store, nil); !result.Clean {
		t.Errorf("a second Settle: %+v", result)
	}
}

// A file rewritten across a Commit goes back to what it had when that
// Commit began, not to what it had before the entry was made.
func TestSettleUsesTheNewerContent(t *testing.T) {
	store, _, _ := newStore(t)
	root := folder(t, store, "default")
	file := create(t, store, root, "f", badger.KindFile)
	first := recordBlob(t, store, "first", 1)
	commitContent(t, store, file.Ino, first, 5, time.Unix(100, 0))
	var lost blobstore.Ref
	commit(t, store, func(context.Context) error {
		lost = recordBlob(t, store, "lost", 1)
		commitContent(t, store, file.Ino, lost, 4, time.Unix(200, 0))
		return nil
	})
	stamp := dirStamp(t, store, root)
	result, _ := settle(t, store, checkBy{lost: badger.CopyDamaged})
	if len(result.Files) != 1 || result.Files[0].Outcome != badger.FileReverted || result.Files[0].Content.Ref != first {
		t.Fatalf("Settle: %+v", result.Files)
	}
	if dirStamp(t, store, root) == stamp {
		t.Error("the folder's stamp did not move: a snapshot would reuse its cached tree")
	}
	if n, err := store.Inode(context.Background(), file.Ino); err != nil || n.Ref != first {
		t.Errorf("file after Settle: %+v, %v", n, err)
	}
}

// A copy lost on one volume of two leaves the record, and the file.
func TestSettleKeepsOtherCopies(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	file := create(t, store, folder(t, store, "default"), "f", badger.KindFile)
	ref := recordBlob(t, store, "two copies", 1)
	if err := store.WriteBlobReplicated(ctx, ref, 2); err != nil {
		t.Fatal(err)
	}
	commitContent(t, store, file.Ino, ref, 10, time.Now())
	result, _ := settle(t, store, checkBy{ref: badger.CopyMissing})
	if len(result.Blobs) != 1 || result.Blobs[0].Dropped || result.Files[0].Outcome != badger.FileKept {
		t.Fatalf("Settle: %+v", result)
	}
	meta, err := store.QueryBlobMetadata(ctx, ref, nil)
	if err != nil || len(meta.Volumes) != 1 || meta.Volumes[0] != 2 {
		t.Errorf("record after Settle: %+v, %v", meta, err)
	}
}

// What cannot be checked stays journaled, with the files that use it, and
// a later Settle that can check it finishes the job.
func TestSettleLeavesWhatItCannotCheck(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	file := create(t, store, folder(t, store, "default"), "f", badger.KindFile)
	ref := recordBlob(t, store, "on a volume not mounted", 3)
	commitContent(t, store, file.Ino, ref, 10, time.Now())
	result, _ := settle(t, store, checkBy{ref: badger.CopyUnchecked})
	if len(result.Files) != 1 || result.Files[0].Outcome != badger.FileUnchecked || result.Files[0].Path != "default/f" {
		t.Fatalf("Settle: %+v", result)
	}
	if j := journal(t, store); len(j.Blobs) != 1 || len(j.Contents) != 1 {
		t.Fatalf("journal after Settle: %+v", j)
	}
	// Commits of this Open leave them alone.
	commit(t, store, nil)
	result, _ = settle(t, store, checkBy{ref: badger.CopyMissing})
	if len(result.Files) != 1 || result.Files[0].Outcome != badger.FileRemoved {
		t.Fatalf("second Settle: %+v", result)
	}
	if _, err := store.Inode(ctx, file.Ino); !isNotExist(err) {
		t.Errorf("the file after the second Settle: %v", err)
	}
}

func TestSettleCheckFailure(t *testing.T) {
	store, _, _ := newStore(t)
	recordBlob(t, store, "blob", 1)
	failure := errors.New("cannot read")
	_, err := store.Settle(context.Background(), func(context.Context, *diskaccess.BlobMeta, int) (badger.CopyState, error) {
		return badger.CopyUnchecked, failure
	})
	if err != nil {
		t.Fatalf("Settle with a failing check: %v", err)
	}
	if j := journal(t, store); len(j.Blobs) != 1 {
		t.Errorf("journal: %+v", j)
	}
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
