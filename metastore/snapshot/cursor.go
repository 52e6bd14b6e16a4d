package snapshot

import (
	"context"
	"io"

	"github.com/stofuse/stofuse/blobstore"
)

// Cursor walks one directory's entries in name order, loading each blob
// when it first needs it and holding only the blobs on the path from the
// root to the current entry (one per level). Subtrees that are skipped,
// by Reader.Entries' skip or by Diff where two trees share a blob, are
// never loaded. A Cursor is not safe for concurrent use.
type Cursor struct {
	load Loader
	// stack is the path from the root node to the current one. Every
	// frame but the top has descended into its child at pos; a top frame
	// that is an index has not yet loaded its child at pos (it is pending).
	stack []cursorFrame
}

type cursorFrame struct {
	node  *Node
	below string // exclusive upper bound on the node's names, "" for none
	pos   int    // next entry, or child, of node
}

func (f *cursorFrame) len() int {
	if f.node.Level == 0 {
		return len(f.node.Entries)
	}
	return len(f.node.Children)
}

// Next returns the next entry, or io.EOF after the last. An error loading
// a blob leaves the Cursor where it was, so Next may be called again.
func (c *Cursor) Next(ctx context.Context) (Entry, error) {
	e, err := c.peek(ctx)
	if err != nil {
		return Entry{}, err
	}
	c.stack[len(c.stack)-1].pos++
	return *e, nil
}

// peek returns the next entry without moving past it, loading blobs down
// to its leaf.
func (c *Cursor) peek(ctx context.Context) (*Entry, error) {
	for {
		c.settle()
		if len(c.stack) == 0 {
			return nil, io.EOF
		}
		if top := &c.stack[len(c.stack)-1]; top.node.Level == 0 {
			return &top.node.Entries[top.pos], nil
		}
		if err := c.descend(ctx); err != nil {
			return nil, err
		}
	}
}

// settle pops the nodes that are done with, moving each parent past them.
func (c *Cursor) settle() {
	for len(c.stack) > 0 {
		top := &c.stack[len(c.stack)-1]
		if top.pos < top.len() {
			return
		}
		c.stack = c.stack[:len(c.stack)-1]
		if len(c.stack) > 0 {
			c.stack[len(c.stack)-1].pos++
		}
	}
}

func (c *Cursor) push(ctx context.Context, ref blobstore.Ref, want bounds) error {
	n, err := loadNode(ctx, c.load, ref, want)
	if err != nil {
		return err
	}
	c.stack = append(c.stack, cursorFrame{node: n, below: want.below})
	return nil
}

// descend loads the pending child of the top frame, an index.
func (c *Cursor) descend(ctx context.Context) error {
	top := c.stack[len(c.stack)-1]
	return c.push(ctx, top.node.Children[top.pos].Ref, childBounds(top.node, top.pos, top.below))
}

// pending returns the child that the cursor is at the start of and has not
// loaded, and its level; ok is false when the cursor is in a leaf or at
// the end.
func (c *Cursor) pending() (child Child, level int, ok bool) {
	c.settle()
	if len(c.stack) == 0 {
		return Child{}, 0, false
	}
	top := &c.stack[len(c.stack)-1]
	if top.node.Level == 0 {
		return Child{}, 0, false
	}
	return top.node.Children[top.pos], top.node.Level - 1, true
}

// advance moves past the top frame's current item: the entry that peek
// returned, or the pending child, which is then never loaded.
func (c *Cursor) advance() {
	c.stack[len(c.stack)-1].pos++
}

// skip moves n entries forward, or to the end if there are fewer.
func (c *Cursor) skip(ctx context.Context, n uint64) error {
	for n > 0 {
		c.settle()
		if len(c.stack) == 0 {
			return nil
		}
		top := &c.stack[len(c.stack)-1]
		if top.node.Level == 0 {
			step := min(n, uint64(top.len()-top.pos))
			top.pos += int(step)
			n -= step
			continue
		}
		if child := top.node.Children[top.pos]; child.Count <= n {
			n -= child.Count
			top.pos++
			continue
		}
		if err := c.descend(ctx); err != nil {
			return err
		}
	}
	return nil
}

// done reports whether the cursor is past the last entry.
func (c *Cursor) done() bool {
	c.settle()
	return len(c.stack) == 0
}
