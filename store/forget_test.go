package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stofuse/stofuse/store"
)

// snapshotNames lists the names of collection's snapshots on a volume.
func snapshotNames(t *testing.T, s *store.Store, collection, volume string) []string {
	t.Helper()
	ctx := context.Background()
	v, err := s.LookupVolume(ctx, volume)
	if err != nil {
		t.Fatal(err)
	}
	names, err := s.SnapshotNames(ctx, collection, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// takeSnapshots makes the photos tree and takes n snapshots of it on the
// default volume, with a change to f0 before each, and returns their
// names, oldest first.
func takeSnapshots(t *testing.T, s *store.Store, n int) []string {
	t.Helper()
	folder := tree(t, s)[""].Ino
	var names []string
	for i := range n {
		names = append(names, changeAndSnapshot(t, s, folder, i).Name)
	}
	return names
}

// changeAndSnapshot writes version i of photos/f0 and snapshots photos.
func changeAndSnapshot(t *testing.T, s *store.Store, folder uint64, i int) *store.SnapshotResult {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Meta().Remove(ctx, folder, "f0", false); err != nil {
		t.Fatal(err)
	}
	writeFile(t, s, folder, "f0", []byte(fmt.Sprint("version ", i)))
	v, _ := s.Volume(ctx, store.DefaultVolume)
	r, err := s.Snapshot(ctx, "photos", v.ID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestForget: a policy forgets the snapshots it does not keep on every
// volume that names them (a replica too), a dry run changes nothing, and
// neither a replicate nor a recovery brings a forgotten one back.
func TestForget(t *testing.T) {
	ctx := context.Background()
	s, key := newStore(t)
	names := takeSnapshots(t, s, 4)
	v1, _ := s.Volume(ctx, store.DefaultVolume)
	replica := t.TempDir()
	v2, err := s.AddVolume(ctx, store.LocalVolume("replica", replica))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Replicate(ctx, v1, v2, store.ReplicateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := snapshotNames(t, s, "photos", "replica"); !slices.Equal(got, names) {
		t.Fatalf("the replica names %v, want %v", got, names)
	}

	dry, err := s.Forget(ctx, "photos", store.RetentionPolicy{Last: 2}, true)
	if err != nil {
		t.Fatal(err)
	}
	if dry.Kept != 2 || dry.Forgotten != 2 || len(dry.Snapshots) != 4 || dry.Snapshots[3].Name != names[3] ||
		!dry.Snapshots[3].Keep || dry.Snapshots[0].Keep || strings.Join(dry.Snapshots[1].Volumes, ",") != "default,replica" {
		t.Errorf("dry run = %+v", dry)
	}
	if got := snapshotNames(t, s, "photos", store.DefaultVolume); !slices.Equal(got, names) {
		t.Errorf("after a dry run the volume names %v, want all of %v", got, names)
	}

	done, err := s.Forget(ctx, "photos", store.RetentionPolicy{Last: 2}, false)
	if err != nil || done.Forgotten != 2 {
		t.Fatalf("Forget = %+v, %v", done, err)
	}
	for _, volume := range []string{store.DefaultVolume, "replica"} {
		if got := snapshotNames(t, s, "photos", volume); !slices.Equal(got, names[2:]) {
			t.Errorf("volume %s names %v after forget, want %v", volume, got, names[2:])
		}
	}
	if _, err := s.FindSnapshot(ctx, "photos", names[0], v1.ID); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("FindSnapshot of a forgotten snapshot: %v", err)
	}
	// The kept snapshots still read whole.
	latest, err := s.FindSnapshot(ctx, "photos", "latest", v1.ID)
	if err != nil || latest.Name != names[3] {
		t.Fatalf("latest = %+v, %v", latest, err)
	}
	if _, err := s.Record(ctx, latest); err != nil {
		t.Errorf("the newest record after forget: %v", err)
	}
	if _, err := s.Replicate(ctx, v2, v1, store.ReplicateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := snapshotNames(t, s, "photos", store.DefaultVolume); !slices.Equal(got, names[2:]) {
		t.Errorf("a replicate back brought names back: %v", got)
	}
	// The next snapshot chains on to the newest, which was kept.
	c, _ := s.Collection(ctx, "photos")
	next := changeAndSnapshot(t, s, c.FolderIno, 9)
	info, err := s.FindSnapshot(ctx, "photos", next.Name, v1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := s.Record(ctx, info); err != nil || rec.Parent != names[3] {
		t.Errorf("the snapshot after forget: %+v, %v; want the parent %s", rec, err, names[3])
	}
	names = append(names, next.Name)
	s.Close()

	r, report, err := store.Recover(ctx, t.TempDir(), store.LocalVolume("default", filepath.Join(s.Dir(), "volumes", "default")), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !report.Complete() {
		t.Errorf("recover after forget: %+v", report)
	}
	if got := snapshotNames(t, r, "photos", "default"); !slices.Equal(got, names[2:]) {
		t.Errorf("recovered store names %v, want %v", got, names[2:])
	}
}

// TestForgetNeedsEveryVolume: with a volume away, forget changes nothing
// and says which volume, and an empty policy or an unknown collection is
// refused.
func TestForgetNeedsEveryVolume(t *testing.T) {
	ctx := context.Background()
	s, key := newStore(t)
	names := takeSnapshots(t, s, 3)
	away := filepath.Join(t.TempDir(), "away")
	if _, err := s.AddVolume(ctx, store.LocalVolume("away", away)); err != nil {
		t.Fatal(err)
	}
	dir := s.Dir()
	s.Close()
	if err := os.Rename(away, away+".moved"); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, dir, store.WithKey(key))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Forget(ctx, "photos", store.RetentionPolicy{Last: 1}, false)
	if err == nil || !strings.Contains(err.Error(), `volume "away" is not available`) || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("Forget with a volume away: %v", err)
	}
	if got := snapshotNames(t, s, "photos", store.DefaultVolume); !slices.Equal(got, names) {
		t.Errorf("after a refused forget the volume names %v, want %v", got, names)
	}
	if _, err := s.Forget(ctx, "photos", store.RetentionPolicy{}, true); !errors.Is(err, store.ErrEmptyPolicy) {
		t.Errorf("Forget with an empty policy: %v", err)
	}
	var nf *store.NotFoundError
	if _, err := s.Forget(ctx, "nothing", store.RetentionPolicy{Last: 1}, true); !errors.As(err, &nf) {
		t.Errorf("Forget of an unknown collection: %v", err)
	}
}
