package fusefs

import (
	"errors"
	"sync"
	"syscall"

	"github.com/stofuse/stofuse/blobstore"
)

// holds is what the mount holds that the metadata does not show, for a
// garbage collection run beside it (store.Mount, through Root): the open
// handles, each of which says which blobs it may still read, and the
// snapshots shown. A handle is added once it is made and removed at its
// release; a blob it names is one the handle reads or copies from, so it
// must stay whatever the metadata says of it since (the file unlinked,
// rewritten, or its snapshot forgotten).
type holds struct {
	mu      sync.Mutex // guards handles and browsed; never held during I/O
	handles map[holder]bool
	browsed map[blobstore.Ref]bool // root trees of the snapshots shown
}

// holder is an open handle that holds blobs.
type holder interface {
	// heldBlobs calls fn with the blobs the handle may read now; it takes
	// only attribute locks (never a content lock, which a writer holds
	// while it waits for a ref's lock that a collection may hold).
	heldBlobs(fn func(blobstore.Ref))
}

func newHolds() *holds {
	return &holds{handles: map[holder]bool{}, browsed: map[blobstore.Ref]bool{}}
}

func (h *holds) add(x holder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.handles[x] = true
}

func (h *holds) remove(x holder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.handles, x)
}

// browse notes a snapshot's root tree as shown (kept until unmount: the
// kernel may keep the view's entries for as long).
func (h *holds) browse(root blobstore.Ref) {
	if root.IsZero() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.browsed[root] = true
}

func (h *holds) snapshot() ([]holder, []blobstore.Ref) {
	h.mu.Lock()
	defer h.mu.Unlock()
	handles := make([]holder, 0, len(h.handles))
	for x := range h.handles {
		handles = append(handles, x)
	}
	roots := make([]blobstore.Ref, 0, len(h.browsed))
	for root := range h.browsed {
		roots = append(roots, root)
	}
	return handles, roots
}

// HeldBlobs calls fn with every blob the mount holds now (store.Mount):
// what every open handle reads (a file of files/ or ref/ or a snapshot,
// also one unlinked since), the content a file being rewritten started
// from (copy on write), and the blobs of the files being written into
// ref/ (the name's ref, what a written name was stored as).
func (r *Root) HeldBlobs(fn func(blobstore.Ref)) {
	f := r.fsys
	handles, _ := f.holds.snapshot()
	for _, x := range handles {
		x.heldBlobs(fn)
	}
	for _, p := range f.ref.pendingNodes() {
		p.heldBlobs(fn)
	}
}

// BrowsedSnapshots calls fn with the root tree of every snapshot shown
// since the mount began (store.Mount).
func (r *Root) BrowsedSnapshots(fn func(root blobstore.Ref)) {
	_, roots := r.fsys.holds.snapshot()
	for _, root := range roots {
		fn(root)
	}
}

// BlobsRemoved drops the kernel's entries of ref/ for refs, whose copies
// on volumeID are gone (store.Mount), so that ref/ stops showing them at
// once: they are otherwise cached for blobTimeout. It waits for the
// kernel, so the caller must not be serving a request of this mount.
func (r *Root) BlobsRemoved(volumeID int, refs []blobstore.Ref) {
	f := r.fsys
	if f.cfg.OnlyVolume && volumeID != f.cfg.Volume {
		return // ref/ does not show that volume's blobs
	}
	for _, ref := range refs {
		if errno := f.ref.NotifyEntry(ref.String()); errno != 0 && !errors.Is(errno, syscall.ENOENT) {
			f.logf("invalidating ref/%s: %v", ref, errno)
			return // the kernel refuses notifications (not mounted yet, or gone)
		}
	}
}

// heldBlobs implements holder: the blob the handle reads.
func (h *readHandle) heldBlobs(fn func(blobstore.Ref)) { fn(h.blob.Ref()) }

// heldBlobs implements holder: the file's committed content (its record,
// also after an unlink) and the content its write session started from.
func (h *treeWriteHandle) heldBlobs(fn func(blobstore.Ref)) {
	n := h.node
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.last.Committed && !n.last.Ref.IsZero() {
		fn(n.last.Ref)
	}
	if n.session != nil && !n.session.blob.IsZero() {
		fn(n.session.blob)
	}
}

// heldBlobs implements holder: the written file's.
func (h *writeHandle) heldBlobs(fn func(blobstore.Ref)) { h.node.heldBlobs(fn) }

// heldBlobs is what a file written into ref/ holds: the blob its hex name
// says (being streamed, or rewritten), and the blob it was last stored as.
func (p *pendingNode) heldBlobs(fn func(blobstore.Ref)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ref, err := blobstore.ParseRef(p.name); err == nil {
		fn(ref)
	}
	if !p.session.blob.IsZero() {
		fn(p.session.blob)
	}
}

// pendingNodes returns the files being written into ref/ under a name.
func (d *refDir) pendingNodes() []*pendingNode {
	d.mu.Lock()
	defer d.mu.Unlock()
	nodes := make([]*pendingNode, 0, len(d.pending))
	for _, p := range d.pending {
		nodes = append(nodes, p)
	}
	return nodes
}
