package snapshot

import (
	"context"
	"slices"
	"strings"

	"github.com/stofuse/stofuse/blobstore"
)

// Emit receives each finished tree blob: its ref and its plaintext. The
// caller stores it (sealed with the collection's key). plaintext is valid
// only during the call: the Writer reuses it. Blobs are emitted children
// before parents, so a parent is only stored once all it names is; an
// error stops the Writer and is returned by the Add or Finish that called
// Emit.
type Emit func(ctx context.Context, ref blobstore.Ref, plaintext []byte) error

type writerState byte

const (
	writerOpen     writerState = iota // taking entries
	writerFinished                    // Finish returned the root
	writerFailed                      // Emit failed; the tree is incomplete
)

// Writer builds one directory's tree from its entries, given in ascending
// name order one at a time. It holds at most one unfinished node per
// level (each under maxBody + MaxEntrySize bytes), not the listing, so
// memory stays bounded for a directory of any size. A Writer is not safe
// for concurrent use.
type Writer struct {
	emit   Emit
	state  writerState
	levels []*levelBuffer // levels[0] fills leaves
	last   []byte         // name of the last entry added (a buffer: no allocation per entry)
	added  uint64
	item   []byte // scratch for one encoded entry
}

// levelBuffer is the node being filled at one level.
type levelBuffer struct {
	level     int
	blob      []byte // header, then the items so far
	items     int
	first     string        // first name in the node
	count     uint64        // entries under the node
	lastChild blobstore.Ref // an index level's last child: the root when it is the only one
	childItem []byte        // scratch: this level's item in the level above
}

// NewWriter returns a Writer that hands finished blobs to emit.
func NewWriter(emit Emit) *Writer {
	return &Writer{emit: emit}
}

// Add appends an entry, which must sort after the entries added before.
// An entry that fails validation or is out of order is refused with an
// ErrInvalid error and leaves the Writer as it was; an Emit error fails
// the Writer for good.
func (w *Writer) Add(ctx context.Context, e Entry) error {
	if w.state != writerOpen {
		return invalid("Add on a %s writer", w.stateName())
	}
	if w.added > 0 && e.Name <= string(w.last) {
		return invalid("entry %q after %q: names must ascend and be unique", truncateName(e.Name), truncateName(string(w.last)))
	}
	item, err := appendEntry(w.item[:0], &e)
	if err != nil {
		return err
	}
	w.item = item
	w.last = append(w.last[:0], e.Name...)
	w.added++
	return w.failOn(w.add(ctx, 0, item, e.Name, 1))
}

// Finish emits what is left and returns the root tree ref of the
// directory: for an empty directory, the ref of an empty leaf. The Writer
// takes no more entries afterwards.
func (w *Writer) Finish(ctx context.Context) (blobstore.Ref, error) {
	if w.state != writerOpen {
		return blobstore.Ref{}, invalid("Finish on a %s writer", w.stateName())
	}
	if len(w.levels) == 0 {
		w.levelAt(0)
	}
	for i := 0; i < len(w.levels); i++ {
		lb := w.levels[i]
		if i == len(w.levels)-1 { // the top level has never been cut: it is the root
			root, err := w.emitRoot(ctx, lb)
			if err != nil {
				return root, w.failOn(err)
			}
			w.state = writerFinished
			return root, nil
		}
		if lb.items > 0 {
			if err := w.cut(ctx, lb); err != nil {
				return blobstore.Ref{}, w.failOn(err)
			}
		}
	}
	panic("unreachable: the loop returns at the top level")
}

// Added returns how many entries were added.
func (w *Writer) Added() uint64 { return w.added }

func (w *Writer) emitRoot(ctx context.Context, lb *levelBuffer) (blobstore.Ref, error) {
	if lb.level > 0 && lb.items == 1 {
		return lb.lastChild, nil // an index of one child says nothing its child does not
	}
	setHeaderCount(lb.blob, lb.items)
	ref := blobstore.RefOf(lb.blob)
	return ref, w.emit(ctx, ref, lb.blob)
}

// add appends one item to the node filling at level, cutting the node
// before the item if it would grow past maxBody, or after it at a
// content-defined cut.
func (w *Writer) add(ctx context.Context, level int, item []byte, name string, count uint64) error {
	lb := w.levelAt(level)
	if lb == nil {
		return invalid("directory tree deeper than %d levels", maxLevel)
	}
	if lb.items > 0 && len(lb.blob)-headerSize+len(item) > maxBody {
		if err := w.cut(ctx, lb); err != nil {
			return err
		}
	}
	if lb.items == 0 {
		lb.first = strings.Clone(name)
	}
	lb.blob = append(lb.blob, item...)
	lb.items++
	lb.count += count
	if len(lb.blob)-headerSize >= minBody && isCut(level, name, len(item)) {
		return w.cut(ctx, lb)
	}
	return nil
}

// cut emits the node filling at lb's level and adds it as a child to the
// level above.
func (w *Writer) cut(ctx context.Context, lb *levelBuffer) error {
	setHeaderCount(lb.blob, lb.items)
	ref := blobstore.RefOf(lb.blob)
	if err := w.emit(ctx, ref, lb.blob); err != nil {
		return err
	}
	child := Child{First: lb.first, Ref: ref, Count: lb.count}
	lb.blob, lb.items, lb.count, lb.first = lb.blob[:headerSize], 0, 0, ""
	var err error
	if lb.childItem, err = appendChild(lb.childItem[:0], child); err != nil {
		return err
	}
	if err := w.add(ctx, lb.level+1, lb.childItem, child.First, child.Count); err != nil {
		return err
	}
	w.levels[lb.level+1].lastChild = ref
	return nil
}

// levelAt returns the buffer of a level, creating it the first time; nil
// past maxLevel.
func (w *Writer) levelAt(level int) *levelBuffer {
	if level > maxLevel {
		return nil
	}
	for len(w.levels) <= level {
		l := len(w.levels)
		w.levels = append(w.levels, &levelBuffer{level: l, blob: appendHeader(make([]byte, 0, 64<<10), l, 0)})
	}
	return w.levels[level]
}

func (w *Writer) failOn(err error) error {
	if err != nil {
		w.state = writerFailed
	}
	return err
}

func (w *Writer) stateName() string {
	return [...]string{"open", "finished", "failed"}[w.state]
}

// BuildDir builds the tree of a directory whose entries are in memory, in
// any order, and returns its root tree ref. For large directories prefer
// a Writer fed in name order, which does not need the listing in memory.
func BuildDir(ctx context.Context, entries []Entry, emit Emit) (blobstore.Ref, error) {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	w := NewWriter(emit)
	for _, e := range sorted {
		if err := w.Add(ctx, e); err != nil {
			return blobstore.Ref{}, err
		}
	}
	return w.Finish(ctx)
}
