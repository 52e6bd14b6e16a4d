package snapshot

import (
	"context"
	"io"

	"github.com/stofuse/stofuse/blobstore"
)

// maxDepth bounds how deep Walk and Diff descend: a path of more
// components than this is longer than PATH_MAX, so a tree that deep is
// forged.
const maxDepth = 2048

// ChangeKind says how a path differs between two trees.
type ChangeKind byte

const (
	Added    ChangeKind = 1 // only in the second tree
	Removed  ChangeKind = 2 // only in the first tree
	Modified ChangeKind = 3 // in both, with other attributes, content or kind
)

// String names the change as a diff listing shows it.
func (k ChangeKind) String() string {
	switch k {
	case Added:
		return "added"
	case Removed:
		return "removed"
	case Modified:
		return "modified"
	}
	return "unknown change"
}

// Change is one path that differs between two trees.
type Change struct {
	Kind ChangeKind
	Path string // slash-separated, relative to the root directory
	Old  Entry  // for Removed and Modified
	New  Entry  // for Added and Modified
}

// Walk calls fn for every entry under the directory whose root tree ref is
// root, depth first: a directory before its entries, the entries of a
// directory in name order. path is slash-separated, relative to root. An
// error from fn stops the walk and is returned.
func Walk(ctx context.Context, load Loader, root blobstore.Ref, fn func(path string, e Entry) error) error {
	return walkDir(ctx, load, root, "", 0, fn)
}

func walkDir(ctx context.Context, load Loader, root blobstore.Ref, prefix string, depth int, fn func(string, Entry) error) error {
	if depth > maxDepth {
		return &TreeError{root, corrupt("directories nested deeper than %d", maxDepth)}
	}
	c, err := NewReader(load, root).Entries(ctx, 0)
	if err != nil {
		return err
	}
	for {
		e, err := c.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		path := joinPath(prefix, e.Name)
		if err := fn(path, e); err != nil {
			return err
		}
		if e.Kind == KindDir {
			if err := walkDir(ctx, load, e.Ref, path, depth+1, fn); err != nil {
				return err
			}
		}
	}
}

func joinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "/" + name
}

// Diff calls fn for every path that differs between the tree rooted at
// rootA (loaded with loadA) and the tree rooted at rootB (loadB), in the
// order Walk visits them. Everything under an added or removed directory
// is reported too. Subtrees with equal refs are skipped unread, inside a
// large directory as well as across directories, so comparing two
// snapshots that share most of their blobs loads only the blobs that
// differ. An error from fn stops Diff and is returned.
func Diff(ctx context.Context, loadA Loader, rootA blobstore.Ref, loadB Loader, rootB blobstore.Ref, fn func(Change) error) error {
	d := differ{loadA: loadA, loadB: loadB, fn: fn}
	return d.dirs(ctx, "", rootA, rootB, 0)
}

type differ struct {
	loadA, loadB Loader
	fn           func(Change) error
}

// dirs compares two listings of one directory, merging them by name.
func (d *differ) dirs(ctx context.Context, prefix string, rootA, rootB blobstore.Ref, depth int) error {
	if rootA == rootB {
		return nil
	}
	if depth > maxDepth {
		return &TreeError{rootB, corrupt("directories nested deeper than %d", maxDepth)}
	}
	a, err := NewReader(d.loadA, rootA).Entries(ctx, 0)
	if err != nil {
		return err
	}
	b, err := NewReader(d.loadB, rootB).Entries(ctx, 0)
	if err != nil {
		return err
	}
	for {
		if err := skipShared(ctx, a, b); err != nil {
			return err
		}
		if a.done() && b.done() {
			return nil
		}
		if err := d.step(ctx, prefix, a, b, depth); err != nil {
			return err
		}
	}
}

// skipShared moves both cursors past the nodes that start where they are
// and have equal refs, loading nodes until both stand on an entry (or the
// end) with no shared node pending.
func skipShared(ctx context.Context, a, b *Cursor) error {
	for {
		childA, levelA, okA := a.pending()
		childB, levelB, okB := b.pending()
		switch {
		case okA && okB && childA.Ref == childB.Ref:
			a.advance()
			b.advance()
		case okA && (!okB || levelA >= levelB):
			if err := a.descend(ctx); err != nil {
				return err
			}
		case okB:
			if err := b.descend(ctx); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// step reports the entry, or pair of entries, with the lowest name.
func (d *differ) step(ctx context.Context, prefix string, a, b *Cursor, depth int) error {
	ea, errA := a.peek(ctx)
	eb, errB := b.peek(ctx)
	if errA != nil && errA != io.EOF || errB != nil && errB != io.EOF {
		return firstErr(errA, errB)
	}
	switch {
	case errB == io.EOF || errA == nil && ea.Name < eb.Name:
		a.advance()
		return d.only(ctx, Removed, d.loadA, joinPath(prefix, ea.Name), *ea, depth)
	case errA == io.EOF || eb.Name < ea.Name:
		b.advance()
		return d.only(ctx, Added, d.loadB, joinPath(prefix, eb.Name), *eb, depth)
	}
	old, new := *ea, *eb
	a.advance()
	b.advance()
	return d.pair(ctx, joinPath(prefix, old.Name), old, new, depth)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}

// pair reports an entry that is in both trees.
func (d *differ) pair(ctx context.Context, path string, old, new Entry, depth int) error {
	if old.Equal(&new) {
		return nil
	}
	if old.Kind == KindDir && new.Kind == KindDir {
		if !old.sameAttributes(&new) {
			if err := d.fn(Change{Kind: Modified, Path: path, Old: old, New: new}); err != nil {
				return err
			}
		}
		return d.dirs(ctx, path, old.Ref, new.Ref, depth+1)
	}
	if err := d.fn(Change{Kind: Modified, Path: path, Old: old, New: new}); err != nil {
		return err
	}
	if old.Kind == KindDir {
		if err := d.below(ctx, Removed, d.loadA, path, old.Ref, depth); err != nil {
			return err
		}
	}
	if new.Kind == KindDir {
		return d.below(ctx, Added, d.loadB, path, new.Ref, depth)
	}
	return nil
}

// only reports an entry that is in one tree, and what is under it.
func (d *differ) only(ctx context.Context, kind ChangeKind, load Loader, path string, e Entry, depth int) error {
	if err := d.fn(oneSided(kind, path, e)); err != nil {
		return err
	}
	if e.Kind != KindDir {
		return nil
	}
	return d.below(ctx, kind, load, path, e.Ref, depth)
}

// below reports everything under an added or removed directory.
func (d *differ) below(ctx context.Context, kind ChangeKind, load Loader, path string, root blobstore.Ref, depth int) error {
	return walkDir(ctx, load, root, path, depth+1, func(p string, e Entry) error {
		return d.fn(oneSided(kind, p, e))
	})
}

func oneSided(kind ChangeKind, path string, e Entry) Change {
	if kind == Added {
		return Change{Kind: kind, Path: path, New: e}
	}
	return Change{Kind: kind, Path: path, Old: e}
}
