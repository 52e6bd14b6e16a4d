package store_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/snapshot"
	"github.com/stofuse/stofuse/store"
)

// A volume that is not there at open keeps its journal entries, and the
// files that use its blobs, for an open that can check them.
func TestSettleWaitsForAnUnavailableVolume(t *testing.T) {
	ctx := context.Background()
	e := newCrashEnv(t)
	second := filepath.Join(t.TempDir(), "second")
	v, err := e.s.AddVolume(ctx, store.LocalVolume("second", second))
	if err != nil {
		t.Fatal(err)
	}
	e.write(0, "f00", []byte("on the first volume"))
	e.writeOn(v.ID, 1, "f01", []byte("on the second volume"))
	e.crash(false)
	if err := os.Rename(second, second+".away"); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	r := e.s.Settled()
	if len(r.Unchecked) != 1 || r.Unchecked[0].Volume != "second" || !slices.Equal(r.UncheckedFiles, []string{"default/f01"}) ||
		!slices.Equal(r.Removed, []string{"default/f00"}) {
		t.Fatalf("settle report with the second volume away: %+v", r)
	}
	if _, err := e.s.Meta().Lookup(ctx, e.dirs[""], "f01"); err != nil {
		t.Errorf("the file on the second volume: %v", err)
	}
	if err := e.s.Sync(ctx); err != nil { // this Open's commits leave them
		t.Fatal(err)
	}
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(second+".away", second); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	if r := e.s.Settled(); r.Clean || r.Checked != 1 || r.Kept != 1 || len(r.Unchecked)+len(r.Lost) != 0 {
		t.Errorf("settle report with the second volume back: %+v", r)
	}
	if r := e.s.Settled(); !strings.Contains(r.String(), "1 files kept") {
		t.Errorf("report line: %s", r.String())
	}
}

// A snapshot taken after settling sees the files put back and removed:
// settling moves the stamps of the directories it changes, so the trees
// an earlier snapshot cached for them are not reused.
func TestSnapshotAfterSettle(t *testing.T) {
	ctx := context.Background()
	e := newCrashEnv(t)
	snaps, err := e.s.AddVolume(ctx, store.LocalVolume("snapshots", filepath.Join(t.TempDir(), "snapshots")))
	if err != nil {
		t.Fatal(err)
	}
	ops := crashWorkload()
	e.run(ops[:16]) // a Sync at 11, then files replaced, made, rewritten
	// On the other volume, whose Sync leaves this one's blobs pending.
	before, err := e.s.Snapshot(ctx, store.DefaultCollection, snaps.ID)
	if err != nil {
		t.Fatal(err)
	}
	lost := e.crash(false)
	e.reopen()
	want, reverted, removed, _ := e.expected(lost)
	if len(reverted) == 0 || len(removed) == 0 {
		t.Fatalf("the workload left nothing to put back (%v) or remove (%v)", reverted, removed)
	}
	after, err := e.s.Snapshot(ctx, store.DefaultCollection, snaps.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Unchanged || after.Root == before.Root {
		t.Fatalf("the snapshot after settling: %+v", after)
	}
	got := map[string]blobstore.Ref{}
	err = snapshot.Walk(ctx, e.s.LoadTree, after.Root, func(path string, entry snapshot.Entry) error {
		if entry.Kind == snapshot.KindFile {
			got[path] = entry.Ref
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("the snapshot holds %d files, want %d", len(got), len(want))
	}
	for name, w := range want {
		if got[name] != blobstore.RefOf(w.content) {
			t.Errorf("%s in the snapshot: %s, want %s", name, got[name], blobstore.RefOf(w.content))
		}
	}
}
