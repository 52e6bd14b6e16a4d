package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/store"
)

// The converse of a crash: the metadata goes back to what it was at a
// Sync (restored from a copy) while the volume keeps every blob written
// since. The store opens with the files as they were then, and the newer
// blobs are only orphans, which a scrub counts.
func TestMetadataBackToALastSync(t *testing.T) {
	ops := crashWorkload()
	for _, at := range []struct {
		name     string
		step     int  // where the copy of the metadata is made
		syncedAt bool // after a Sync (its journal empty); else with a journal to settle
	}{{"at-a-sync", 12, true}, {"after-writes", 15, false}} {
		t.Run(at.name, func(t *testing.T) {
			t.Parallel()
			e := newCrashEnv(t)
			e.run(ops[:at.step])
			if at.syncedAt {
				e.sync()
			}
			// Copy the metadata as a crash leaves it (the volumes keep
			// everything: nothing is thrown away), and go on.
			if err := store.CloseWithoutSyncForTest(e.s); err != nil {
				t.Fatal(err)
			}
			meta := filepath.Join(e.s.Dir(), "meta")
			saved := filepath.Join(t.TempDir(), "meta")
			if err := os.CopyFS(saved, os.DirFS(meta)); err != nil {
				t.Fatal(err)
			}
			then := map[string]wantFile{}
			for name, f := range e.files {
				then[name] = wantFile{ino: f.ino, content: f.current, mtime: f.currentMtime}
			}
			known := e.storedBlobs()
			e.reopen()
			e.remount()
			e.run(ops[at.step:])
			e.sync()
			newer := len(e.storedBlobs()) - len(known)
			if err := e.s.Close(); err != nil {
				t.Fatal(err)
			}
			if newer == 0 {
				t.Fatal("the workload stored no blob after the copy")
			}

			if err := os.RemoveAll(meta); err != nil {
				t.Fatal(err)
			}
			if err := os.CopyFS(meta, os.DirFS(saved)); err != nil {
				t.Fatal(err)
			}
			e.reopen()
			if r := e.s.Settled(); r.Clean != at.syncedAt || len(r.Lost)+len(r.Reverted)+len(r.Removed) != 0 {
				t.Errorf("settle report %+v, want clean %v and nothing lost", r, at.syncedAt)
			}
			e.checkTree(then)
			sum := e.s.ScrubVolume(context.Background(), e.volume, store.ScrubOptions{})
			if sum.Orphans != newer || sum.Damaged+sum.Missing+sum.Failures != 0 {
				t.Errorf("scrub: %+v, want %d orphans and nothing else", sum, newer)
			}
		})
	}
}

// remount puts the reopened store's volume back on a crashDriver.
func (e *crashEnv) remount() {
	e.t.Helper()
	ctx := context.Background()
	e.driver = newCrashDriver(e.t, e.volume.Settings["path"])
	if err := e.s.Controller().Unmount(e.volume.ID); err != nil {
		e.t.Fatal(err)
	}
	if err := e.s.Controller().Mount(ctx, e.volume.ID, e.volume.UUID, e.driver); err != nil {
		e.t.Fatal(err)
	}
}

// storedBlobs lists the blobs the volume holds.
func (e *crashEnv) storedBlobs() map[blobstore.Ref]bool {
	e.t.Helper()
	all := map[blobstore.Ref]bool{}
	err := e.driver.List(context.Background(), func(info blobstore.BlobInfo) error {
		all[info.Ref] = true
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return all
}
