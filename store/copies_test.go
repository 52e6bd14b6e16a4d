package store_test

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/store"
)

// addLocalVolume adds a local volume labelled label in a new temporary
// directory, and returns it with the directory.
func addLocalVolume(t *testing.T, s *store.Store, label string) (*badger.Volume, string) {
	t.Helper()
	dir := t.TempDir()
	v, err := s.AddVolume(context.Background(), store.LocalVolume(label, dir))
	if err != nil {
		t.Fatal(err)
	}
	return v, dir
}

// putIn stores content in a collection on the default volume.
func putIn(t *testing.T, s *store.Store, collection string, content []byte) blobstore.Ref {
	t.Helper()
	ctx := context.Background()
	v, err := s.Volume(ctx, store.DefaultVolume)
	if err != nil {
		t.Fatal(err)
	}
	ref, _, err := s.Put(ctx, v.ID, collection, bytes.NewReader(content), nil)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// copiesOf lists the volumes the metadata records a blob on.
func copiesOf(t *testing.T, s *store.Store, ref blobstore.Ref) []int {
	t.Helper()
	meta, err := s.Meta().QueryBlobMetadata(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	return meta.Volumes
}

// belowPolicy returns the CopiesStatus counts of blobs below policy:
// all, by collection, and by volume.
func belowPolicy(t *testing.T, s *store.Store) (int64, map[string]int64, map[string]int64) {
	t.Helper()
	status, err := s.CopiesStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	collections, volumes := map[string]int64{}, map[string]int64{}
	for _, c := range status.Collections {
		collections[c.Name] = c.Below
	}
	for _, v := range status.Volumes {
		volumes[v.Volume] = v.Below
	}
	return status.Below, collections, volumes
}

// TestReplicateByPolicy: a collection with copies 2 gets its blobs copied
// to the second volume, another collection with the store's policy (one
// copy) keeps one; raising the store's policy to 3 fills the third
// volume; a policy naming volumes counts only copies on them; a second
// pass copies nothing; status counts what is below policy throughout.
func TestReplicateByPolicy(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	second, _ := addLocalVolume(t, s, "second")
	third, _ := addLocalVolume(t, s, "third")
	first, _ := s.Volume(ctx, store.DefaultVolume)
	if _, err := s.Meta().CreateCollection(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	var mine, others []blobstore.Ref
	for range 3 {
		mine = append(mine, putIn(t, s, store.DefaultCollection, randomBytes(t, 200_000)))
	}
	for range 2 {
		others = append(others, putIn(t, s, "other", randomBytes(t, 1000)))
	}
	if below, _, _ := belowPolicy(t, s); below != 0 {
		t.Fatalf("below policy before any is set: %d, want 0", below)
	}
	if err := s.Meta().SetCollectionCopies(ctx, store.DefaultCollection, &badger.CopiesPolicy{Copies: 2}); err != nil {
		t.Fatal(err)
	}
	below, byCollection, byVolume := belowPolicy(t, s)
	if below != 3 || byCollection[store.DefaultCollection] != 3 || byCollection["other"] != 0 || byVolume[first.Label] != 3 || byVolume[second.Label] != 0 {
		t.Fatalf("below policy with copies 2: %d, by collection %v, by volume %v; want 3, default 3, on volume default 3", below, byCollection, byVolume)
	}

	sum, err := s.ReplicateByPolicy(ctx, store.PolicyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Checked != 5 || sum.Below != 3 || sum.Copied != 3 || sum.Short != 0 || sum.Failed != 0 || sum.To[second.Label] != 3 {
		t.Errorf("ReplicateByPolicy = %+v, want 5 checked, 3 below, 3 copied to second", sum)
	}
	for _, ref := range mine {
		if got := copiesOf(t, s, ref); !slices.Equal(got, []int{first.ID, second.ID}) {
			t.Errorf("blob %s is on volumes %v, want [%d %d]", ref, got, first.ID, second.ID)
		}
	}
	for _, ref := range others {
		if got := copiesOf(t, s, ref); len(got) != 1 {
			t.Errorf("blob %s of the collection with one copy is on volumes %v", ref, got)
		}
	}
	if below, _, _ := belowPolicy(t, s); below != 0 {
		t.Errorf("below policy after the pass: %d, want 0", below)
	}
	if sum, err := s.ReplicateByPolicy(ctx, store.PolicyOptions{}); err != nil || sum.Copied != 0 || sum.Below != 0 {
		t.Errorf("second pass = %+v, %v; want nothing below policy, nothing copied", sum, err)
	}

	// The store's policy: 3 copies for the collections without their own.
	if err := s.Meta().SetDefaultCopies(ctx, badger.CopiesPolicy{Copies: 3}); err != nil {
		t.Fatal(err)
	}
	if below, byCollection, _ := belowPolicy(t, s); below != 2 || byCollection["other"] != 2 {
		t.Errorf("below policy with the store's 3: %d, %v; want the other collection's 2", below, byCollection)
	}
	if sum, err := s.ReplicateByPolicy(ctx, store.PolicyOptions{}); err != nil || sum.Copied != 4 || sum.To[second.Label] != 2 || sum.To[third.Label] != 2 {
		t.Errorf("pass with the store's 3 = %+v, %v; want 4 copies, 2 to each other volume", sum, err)
	}

	// Copies on named volumes only: the default volume's copy does not
	// count, so the collection's blobs go to the third too.
	err = s.Meta().SetCollectionCopies(ctx, store.DefaultCollection, &badger.CopiesPolicy{Copies: 2, Volumes: []int{second.ID, third.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if below, _, byVolume := belowPolicy(t, s); below != 3 || byVolume[second.Label] != 3 {
		t.Errorf("below policy on second and third: %d, by volume %v; want 3, held by second 3", below, byVolume)
	}
	if sum, err := s.ReplicateByPolicy(ctx, store.PolicyOptions{}); err != nil || sum.Copied != 3 || sum.To[third.Label] != 3 {
		t.Errorf("pass on second and third = %+v, %v; want 3 copies to third", sum, err)
	}
	if below, _, _ := belowPolicy(t, s); below != 0 {
		t.Errorf("below policy at the end: %d, want 0", below)
	}
	for _, v := range []*badger.Volume{first, second, third} {
		if sum, _ := scrubAll(s, v, store.ScrubOptions{}); sum.Failed() {
			t.Errorf("scrub of %s: %+v", v.Label, sum)
		}
	}
}

// TestReplicateByPolicyInvalid: what a policy may not be.
func TestReplicateByPolicyInvalid(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	for _, p := range []badger.CopiesPolicy{{Copies: 0}, {Copies: badger.MaxCopies + 1}, {Copies: 2, Volumes: []int{1}}, {Copies: 1, Volumes: []int{9}}} {
		if err := s.Meta().SetCollectionCopies(ctx, store.DefaultCollection, &p); err == nil {
			t.Errorf("SetCollectionCopies(%+v) = nil, want an error", p)
		}
	}
	if err := s.Meta().SetCollectionCopies(ctx, "nosuch", &badger.CopiesPolicy{Copies: 2}); err == nil {
		t.Error("SetCollectionCopies of a collection that does not exist = nil")
	}
}

// TestReplicateByPolicyDamagedSource: a blob whose only copy is damaged
// is reported and left below policy, nothing copied or recorded; one
// with two copies of which the first is damaged is copied from the other.
func TestReplicateByPolicyDamagedSource(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	second, secondDir := addLocalVolume(t, s, "second")
	third, _ := addLocalVolume(t, s, "third")
	first, _ := s.Volume(ctx, store.DefaultVolume)
	lone := put(t, s, store.DefaultVolume, randomBytes(t, 200_000))
	twice := put(t, s, store.DefaultVolume, randomBytes(t, 200_000))
	if _, err := s.Replicate(ctx, first, second, store.ReplicateOptions{Refs: []blobstore.Ref{twice}}); err != nil {
		t.Fatal(err)
	}
	flipByte(t, blobFile(s, lone), 500)
	flipByte(t, blobFile(s, twice), 500)
	if err := s.Meta().SetDefaultCopies(ctx, badger.CopiesPolicy{Copies: 2, Volumes: []int{second.ID, third.ID}}); err != nil {
		t.Fatal(err)
	}
	var failed []store.Finding
	var damaged []diskaccess.Damage
	sum, err := s.ReplicateByPolicy(ctx, store.PolicyOptions{Failed: func(f store.Finding) { failed = append(failed, f) },
		Damaged: func(d diskaccess.Damage) { damaged = append(damaged, d) }})
	if err != nil {
		t.Fatal(err)
	}
	// The lone blob needs two copies (its copy on the first volume does not
	// count): its damaged copy fails once, and is not read again for the
	// second target. The other needs one, on the third: its damaged copy
	// fails, the second volume's is copied, and the damage is reported for
	// repair, read from the second.
	if sum.Below != 2 || sum.Copied != 1 || sum.To[third.Label] != 1 || sum.Short != 1 || sum.TooFew != 0 || sum.Failed != 2 {
		t.Errorf("ReplicateByPolicy = %+v; want 2 below, 1 copied to third, 1 short (not for want of volumes), 2 failed", sum)
	}
	if len(damaged) != 1 || damaged[0].Ref != twice || damaged[0].Volume != first.ID || damaged[0].ReadFrom != second.ID {
		t.Errorf("damage reported: %+v, want the twice-stored blob's copy on %d, read from %d", damaged, first.ID, second.ID)
	}
	for _, f := range failed {
		if f.Kind != store.NotCopied || f.Volume != first.Label {
			t.Errorf("finding %+v, want a failed copy from volume %s", f, first.Label)
		}
	}
	if got := copiesOf(t, s, lone); !slices.Equal(got, []int{first.ID}) {
		t.Errorf("the damaged lone blob is recorded on %v, want only [%d]", got, first.ID)
	}
	if _, err := os.Stat(storedIn(secondDir, lone)); !os.IsNotExist(err) {
		t.Errorf("the damaged blob's bytes reached the second volume: %v", err)
	}
	if got := copiesOf(t, s, twice); !slices.Equal(got, []int{first.ID, second.ID, third.ID}) {
		t.Errorf("the blob stored twice is on %v, want [%d %d %d]", got, first.ID, second.ID, third.ID)
	}
}

// TestReplicateByPolicyFailingVolumes: a target whose directory is gone
// fails (named as the target), is not used again in the pass, and its
// blobs stay below policy, counted short, not for want of volumes; a
// source that cannot be read (a directory where its file was) is named as
// the source, and the other blobs are copied all the same; the walk cut
// into batches of two looks at every blob once.
func TestReplicateByPolicyFailingVolumes(t *testing.T) {
	defer store.SetPolicyBatchForTest(2)()
	ctx := context.Background()
	s, _ := newStore(t)
	second, secondDir := addLocalVolume(t, s, "second")
	first, _ := s.Volume(ctx, store.DefaultVolume)
	var refs []blobstore.Ref
	for range 5 {
		refs = append(refs, put(t, s, store.DefaultVolume, randomBytes(t, 1000)))
	}
	if err := s.Meta().SetDefaultCopies(ctx, badger.CopiesPolicy{Copies: 2}); err != nil {
		t.Fatal(err)
	}
	// A source that fails to read: its file is a directory now.
	unreadable := refs[0]
	stored := readStored(t, blobFile(s, unreadable))
	if err := os.Remove(blobFile(s, unreadable)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(blobFile(s, unreadable), 0o755); err != nil {
		t.Fatal(err)
	}
	var failed []store.Finding
	sum, err := s.ReplicateByPolicy(ctx, store.PolicyOptions{Failed: func(f store.Finding) { failed = append(failed, f) }})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Checked != 5 || sum.Below != 5 || sum.Copied != 4 || sum.Short != 1 || sum.TooFew != 0 || sum.Failed != 1 {
		t.Errorf("pass with an unreadable source = %+v, want 5 checked and below, 4 copied, 1 short, 1 failed", sum)
	}
	if len(failed) != 1 || failed[0].Ref != unreadable || failed[0].Volume != first.Label {
		t.Errorf("findings %+v, want one naming the source volume %s", failed, first.Label)
	}
	if err := os.Remove(blobFile(s, unreadable)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blobFile(s, unreadable), stored, 0o644); err != nil {
		t.Fatal(err)
	}

	// The target's directory gone: every copy to it fails, once.
	more := []blobstore.Ref{put(t, s, store.DefaultVolume, randomBytes(t, 1000)), put(t, s, store.DefaultVolume, randomBytes(t, 1000))}
	if err := os.RemoveAll(secondDir); err != nil {
		t.Fatal(err)
	}
	failed = nil
	sum, err = s.ReplicateByPolicy(ctx, store.PolicyOptions{Failed: func(f store.Finding) { failed = append(failed, f) }})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Copied != 0 || sum.Short != sum.Below || sum.Below < 2 || sum.TooFew != 0 || sum.Failed != 1 {
		t.Errorf("pass with the target gone = %+v, want nothing copied, every blob below policy short (not for want of volumes), 1 failed", sum)
	}
	if len(failed) != 1 || failed[0].Volume != second.Label || !strings.Contains(failed[0].Error, "storing it on volume") {
		t.Errorf("findings %+v, want one naming the target volume %s", failed, second.Label)
	}
	for _, ref := range more {
		if got := copiesOf(t, s, ref); len(got) != 1 {
			t.Errorf("blob %s is recorded on %v with its target gone", ref, got)
		}
	}
}

// TestReplicatorCopiesNewBlobs: the background replication copies what
// was below policy when it started, then each blob stored while it runs.
func TestReplicatorCopiesNewBlobs(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	addLocalVolume(t, s, "second")
	before := put(t, s, store.DefaultVolume, randomBytes(t, 1000))
	if err := s.Meta().SetDefaultCopies(ctx, badger.CopiesPolicy{Copies: 2}); err != nil {
		t.Fatal(err)
	}
	r, stop := runReplicator(t, s, 0)
	waitFor(t, "the blob stored before to get its second copy", func() bool { return len(copiesOf(t, s, before)) == 2 })
	after := put(t, s, store.DefaultVolume, randomBytes(t, 1000))
	waitFor(t, "the blob stored after to get its second copy", func() bool { return len(copiesOf(t, s, after)) == 2 })
	if below, _, _ := belowPolicy(t, s); below != 0 {
		t.Errorf("below policy: %d, want 0", below)
	}
	if state := r.State(); state.Copied != 2 || state.Passes < 2 {
		t.Errorf("replicator state %+v, want 2 copies in 2 passes or more", state)
	}
	// Stopped right after a store, it copies what was stored before it
	// returns (as at an unmount, after the last snapshot).
	last := put(t, s, store.DefaultVolume, randomBytes(t, 1000))
	stop()
	if got := copiesOf(t, s, last); len(got) != 2 {
		t.Errorf("the blob stored just before the replication stopped is on %v, want two volumes", got)
	}
}

// runReplicator runs a background replication of s reading at most rate
// bytes a second (0: no limit) until stop, which returns once it has
// stopped (and is called at the test's end if not before).
func runReplicator(t *testing.T, s *store.Store, rate float64) (r *store.Replicator, stop func()) {
	r = store.NewReplicator(t.Logf, rate, nil)
	running, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(running, s) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return r, stop
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplicatorFinishesWhenStopped: a replication stopped while it
// copies a blob (slowly: --replicate-rate) finishes that copy, within its
// drain time, before Run returns.
func TestReplicatorFinishesWhenStopped(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	addLocalVolume(t, s, "second")
	if err := s.Meta().SetDefaultCopies(ctx, badger.CopiesPolicy{Copies: 2}); err != nil {
		t.Fatal(err)
	}
	r, stop := runReplicator(t, s, 200_000)
	waitFor(t, "the whole pass at the start", func() bool { return r.State().Passes == 1 })
	big := put(t, s, store.DefaultVolume, randomBytes(t, 600_000)) // 3 s at the rate
	waitFor(t, "the pass over the new blob to start", func() bool { return r.State().Running })
	stop()
	if got := copiesOf(t, s, big); len(got) != 2 {
		t.Errorf("the blob being copied when the replication stopped is on %v, want two volumes", got)
	}
}
