package store_test

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"

	"github.com/stofuse/stofuse/store"
)

// TestMountSnapshots: the names a mount lists come from the volume, a
// snapshot taken by the Store shows at once in the cached listing, and a
// lookup reads the record's root.
func TestMountSnapshots(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	inodes := tree(t, s)
	v, _ := s.Volume(ctx, store.DefaultVolume)
	m := store.NewMountSnapshots(s, v.ID)
	if got, err := m.Collections(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Collections before any snapshot = %q, %v", got, err)
	}
	first, err := s.Snapshot(ctx, "photos", v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.Collections(ctx); err != nil || !slices.Equal(got, []string{"photos"}) {
		t.Fatalf("Collections = %q, %v, want photos", got, err)
	}
	writeFile(t, s, inodes["c"].Ino, "new", []byte("new"))
	second, err := s.Snapshot(ctx, "photos", v.ID)
	if err != nil {
		t.Fatal(err)
	}
	names, err := m.Names(ctx, "photos")
	if err != nil || !slices.Equal(names, []string{first.Name, second.Name}) {
		t.Fatalf("Names = %q, %v, want %s %s", names, err, first.Name, second.Name)
	}
	if none, err := m.Names(ctx, "nothing"); err != nil || len(none) != 0 {
		t.Errorf("Names of no collection = %q, %v", none, err)
	}
	root, err := m.Root(ctx, "photos", first.Name)
	if err != nil || root.Ref != first.Root || root.Name != "photos" || root.Ino != inodes[""].Ino {
		t.Errorf("Root(%s) = %+v, %v, want the tree %s", first.Name, root, err, first.Root)
	}
	for _, name := range []string{"2001-01-01T00-00-00.000000000Z", "latest", "x"} {
		if _, err := m.Root(ctx, "photos", name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Root(%q) = %v, want fs.ErrNotExist", name, err)
		}
	}
	found, err := s.FindSnapshot(ctx, "photos", "latest", v.ID)
	if err != nil || found.Name != second.Name || found.Record != second.Record {
		t.Errorf("FindSnapshot(latest) = %+v, %v, want %s", found, err, second.Name)
	}
}
