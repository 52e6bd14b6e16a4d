package snapshot

import (
	"context"
	"fmt"
	"io/fs"
	"sort"

	"github.com/stofuse/stofuse/blobstore"
)

// Loader returns the plaintext of the tree blob stored under ref (through
// diskaccess Fetch, typically), or an error wrapping fs.ErrNotExist if
// there is none. Its bytes are not trusted: every loaded blob is hashed
// and must match ref, so a cache in the Loader cannot hand out wrong
// entries either. A Loader is called from the goroutine that uses the
// Reader, Cursor or Diff; one shared by several goroutines must be safe
// for concurrent use.
type Loader func(ctx context.Context, ref blobstore.Ref) ([]byte, error)

// bounds is what a node must hold to be the child its parent says it is:
// its level, its first name and count, and an upper bound (exclusive) on
// its names, the next sibling's first name. The root has no bounds.
type bounds struct {
	isRoot bool
	level  int
	first  string
	count  uint64
	below  string // "" for none
}

func rootBounds() bounds { return bounds{isRoot: true} }

// childBounds is what parent's child i must hold, given the bound on
// parent's own names.
func childBounds(parent *Node, i int, parentBelow string) bounds {
	b := bounds{level: parent.Level - 1, first: parent.Children[i].First, count: parent.Children[i].Count, below: parentBelow}
	if i+1 < len(parent.Children) {
		b.below = parent.Children[i+1].First
	}
	return b
}

// loadNode loads, verifies and decodes one tree blob and checks it against
// what its parent said of it. Every error is a *TreeError naming ref.
func loadNode(ctx context.Context, load Loader, ref blobstore.Ref, want bounds) (*Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	plain, err := load(ctx, ref)
	if err != nil {
		return nil, &TreeError{ref, fmt.Errorf("loading: %w", err)}
	}
	if len(plain) > MaxBlobSize {
		return nil, &TreeError{ref, corrupt("%d bytes, more than %d", len(plain), MaxBlobSize)}
	}
	if got := blobstore.RefOf(plain); got != ref {
		return nil, &TreeError{ref, corrupt("loaded bytes hash to %s", got)}
	}
	n, err := DecodeNode(plain)
	if err == nil {
		err = want.check(n)
	}
	if err != nil {
		return nil, &TreeError{ref, err}
	}
	return n, nil
}

func (b bounds) check(n *Node) error {
	first, last, ok := n.nameRange()
	switch {
	case b.isRoot:
		return nil
	case n.Level != b.level:
		return corrupt("node of level %d where its parent says %d", n.Level, b.level)
	case !ok || first != b.first:
		return corrupt("node starts at %q where its parent says %q", truncateName(first), truncateName(b.first))
	case b.below != "" && last >= b.below:
		return corrupt("node holds %q, not below its next sibling %q", truncateName(last), truncateName(b.below))
	case n.Count() != b.count:
		return corrupt("node holds %d entries where its parent says %d", n.Count(), b.count)
	}
	return nil
}

// nameRange returns the first and last name in n, ok false if n is empty.
func (n *Node) nameRange() (first, last string, ok bool) {
	if n.Level == 0 {
		if len(n.Entries) == 0 {
			return "", "", false
		}
		return n.Entries[0].Name, n.Entries[len(n.Entries)-1].Name, true
	}
	return n.Children[0].First, n.Children[len(n.Children)-1].First, true
}

// Reader reads one directory's tree: the entries of one directory, not of
// its subdirectories (each has its own root tree ref in its Entry). It
// holds no state between calls, so it is safe for concurrent use when its
// Loader is.
type Reader struct {
	load Loader
	root blobstore.Ref
}

// NewReader returns a Reader of the directory whose root tree ref is root.
// It loads nothing until used.
func NewReader(load Loader, root blobstore.Ref) *Reader {
	return &Reader{load: load, root: root}
}

// Lookup returns the entry called name, loading one blob per level of the
// directory's tree. A name that is not there is an error wrapping
// fs.ErrNotExist.
func (r *Reader) Lookup(ctx context.Context, name string) (Entry, error) {
	ref, want := r.root, rootBounds()
	for {
		n, err := loadNode(ctx, r.load, ref, want)
		if err != nil {
			return Entry{}, err
		}
		if n.Level == 0 {
			i, found := sort.Find(len(n.Entries), func(i int) int { return compareNames(name, n.Entries[i].Name) })
			if !found {
				return Entry{}, fmt.Errorf("%q: %w", truncateName(name), fs.ErrNotExist)
			}
			return n.Entries[i], nil
		}
		// The child that may hold name is the last one starting at or before it.
		i := sort.Search(len(n.Children), func(i int) bool { return n.Children[i].First > name }) - 1
		if i < 0 {
			return Entry{}, fmt.Errorf("%q: %w", truncateName(name), fs.ErrNotExist)
		}
		ref, want = n.Children[i].Ref, childBounds(n, i, want.below)
	}
}

// Len returns the number of entries in the directory; it loads the root
// blob only.
func (r *Reader) Len(ctx context.Context) (uint64, error) {
	n, err := loadNode(ctx, r.load, r.root, rootBounds())
	if err != nil {
		return 0, err
	}
	return n.Count(), nil
}

// Entries returns a Cursor over the directory's entries in name order,
// starting at the entry with index skip (0 for the first); skipping loads
// only the blobs on the way to that entry, so a readdir can resume at an
// offset.
func (r *Reader) Entries(ctx context.Context, skip uint64) (*Cursor, error) {
	c := &Cursor{load: r.load}
	if err := c.push(ctx, r.root, rootBounds()); err != nil {
		return nil, err
	}
	return c, c.skip(ctx, skip)
}

func compareNames(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
