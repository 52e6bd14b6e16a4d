package fusefs

import (
	"fmt"
	"testing"

	"github.com/stofuse/stofuse/metastore"
)

// TestSnapshotInodes: a view's inode numbers are in their own space (top
// bits 11), distinct between views and from the tree's own, the same for
// the same snapshot, and automatic (0) where the scheme has no room.
func TestSnapshotInodes(t *testing.T) {
	inos := newSnapInos()
	a, b := inos.view("default", "2026-12-01T09-30-05.123456789Z"), inos.view("default", "2026-12-01T09-30-06.000000000Z")
	if a == 0 || b == 0 || a == b || inos.view("default", "2026-12-01T09-30-05.123456789Z") != a {
		t.Fatalf("views %d and %d: want distinct, non-zero and the same when asked again", a, b)
	}
	if again := newSnapInos().view("default", "2026-12-01T09-30-05.123456789Z"); again != a {
		t.Errorf("the same snapshot in another mount is view %d, was %d", again, a)
	}
	treeIno := uint64(metastore.TreeInoBase | 77)
	seen := map[uint64]bool{treeIno: true}
	for _, ino := range []uint64{snapIno(a, treeIno), snapIno(b, treeIno), viewRootIno(a), viewRootIno(b), inos.collectionIno("default")} {
		if ino>>62 != 3 || seen[ino] {
			t.Errorf("inode %#x: want top bits 11 and no repeat", ino)
		}
		seen[ino] = true
	}
	if got := snapIno(a, metastore.TreeInoBase|1<<snapViewShift); got != 0 {
		t.Errorf("a tree inode past 40 bits maps to %#x, want 0 (automatic)", got)
	}
	if snapIno(0, treeIno) != 0 || viewRootIno(0) != 0 {
		t.Error("view 0 (none left) must give automatic inode numbers")
	}
}

// TestInoSpaceCollisions: keys that hash alike get the next free number,
// and a full space answers 0.
func TestInoSpaceCollisions(t *testing.T) {
	space := newInoSpace(5) // numbers 1..4
	got := map[uint64]string{}
	for i := range 4 {
		key := fmt.Sprint("key", i)
		id := space.number(key)
		if id == 0 || id > 4 || got[id] != "" {
			t.Fatalf("%s got %d, taken by %q", key, id, got[id])
		}
		got[id] = key
	}
	if id := space.number("one more"); id != 0 {
		t.Errorf("a full space gave %d, want 0", id)
	}
	if id := space.number("key2"); got[id] != "key2" {
		t.Errorf("key2 asked again got %d", id)
	}
}
