package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// pendingNode is a file written through the mount: spooled until it is
// closed, then stored as a blob (see refDir for the rules).
type pendingNode struct {
	fs.Inode
	dir       *refDir
	rewrite   bool   // rewriting a committed blob: the content must not change
	onRelease func() // called when the last handle closes

	mu       sync.Mutex // guards the fields below, and the spool
	name     string
	content  *contentBuffer // what was written, unless streamed
	stream   *blobStream    // writes streamed into WriteBlob (hex names), not spooled
	failed   error          // the stream failed: the file cannot be stored
	dirty    bool           // written since the last commit
	ref      blobstore.Ref  // the committed blob, once committed
	stored   bool
	mode     uint32
	mtime    time.Time // set by utimens; zero: none
	created  time.Time
	handles  int
	released bool // discarded: spool closed once no handle is left
}

var (
	_ fs.NodeGetattrer = (*pendingNode)(nil)
	_ fs.NodeSetattrer = (*pendingNode)(nil)
	_ fs.NodeOpener    = (*pendingNode)(nil)
)

func newPendingNode(d *refDir, name string, mode uint32) (*pendingNode, error) {
	return &pendingNode{
		dir:     d,
		name:    name,
		content: newContentBuffer(d.fsys.cfg.SpoolDir),
		dirty:   true,
		mode:    mode & 0o7777,
		created: time.Now(),
	}, nil
}

func (p *pendingNode) newHandle() *writeHandle {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.handles++
	return &writeHandle{node: p}
}

// committedRef returns the blob the file was stored as.
func (p *pendingNode) committedRef() (blobstore.Ref, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ref, p.stored
}

// fillAttr gives the written size and times; mode as the writer set it.
func (p *pendingNode) fillAttr(ctx context.Context, out *fuse.Attr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.dir.fsys
	out.Mode = syscall.S_IFREG | p.mode
	out.Nlink = 1
	out.Size = uint64(p.size())
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 1 << 17
	out.Owner = fuse.Owner{Uid: f.cfg.UID, Gid: f.cfg.GID}
	mtime := p.created
	if !p.mtime.IsZero() {
		mtime = p.mtime
	}
	out.SetTimes(&mtime, &mtime, &mtime)
}

// size is the file's size; the caller holds mu.
func (p *pendingNode) size() int64 {
	if p.stream != nil {
		return p.stream.size
	}
	return p.content.Size()
}

// Getattr implements fs.NodeGetattrer.
func (p *pendingNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	p.fillAttr(ctx, &out.Attr)
	out.SetTimeout(pendingTimeout)
	return 0
}

// Setattr implements fs.NodeSetattrer: size (before the file is stored or
// while it is open), mode and times; a time set after the file is stored
// is recorded for its blob.
func (p *pendingNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if err := p.setattr(ctx, in); err != nil {
		return p.dir.fsys.errno(describe("setattr", p.name), err)
	}
	return p.Getattr(ctx, fh, out)
}

func (p *pendingNode) setattr(ctx context.Context, in *fuse.SetAttrIn) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if size, ok := in.GetSize(); ok {
		p.dirty = true
		if p.stream != nil {
			return p.streamFailed(p.stream.truncate(int64(size)))
		}
		// even "truncated to what it was" must be stored, or checked
		if err := p.content.Truncate(int64(size)); err != nil {
			return err
		}
	}
	if mode, ok := in.GetMode(); ok {
		p.mode = mode & 0o7777
	}
	if mtime, ok := in.GetMTime(); ok {
		p.mtime = mtime
		if p.stored && !p.dirty {
			return p.dir.fsys.cfg.Catalog.SetBlobMtime(ctx, p.ref, mtime.UnixNano())
		}
	}
	return nil
}

// Open implements fs.NodeOpener: a written name can be read back, and
// reopened for writing while it is not yet renamed.
func (p *pendingNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if p.dir.fsys.cfg.ReadOnly && flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EROFS
	}
	h := p.newHandle()
	if flags&syscall.O_TRUNC != 0 {
		in := &fuse.SetAttrIn{}
		in.Valid, in.Size = fuse.FATTR_SIZE, 0
		if err := p.setattr(ctx, in); err != nil {
			h.Release(ctx)
			return nil, 0, p.dir.fsys.errno(describe("open", p.name), err)
		}
	}
	return h, fuse.FOPEN_DIRECT_IO, 0
}

func (p *pendingNode) write(data []byte, off int64) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed != nil {
		return 0, p.failed
	}
	p.dirty = true
	if p.stream == nil && p.streamable(off) {
		ref, _ := blobstore.ParseRef(p.name)
		p.stream = startStream(p.dir.fsys, ref)
	}
	if p.stream != nil {
		if err := p.streamFailed(p.stream.writeAt(data, off)); err != nil {
			return 0, err
		}
		return len(data), nil
	}
	return p.content.WriteAt(data, off)
}

// streamable: a file whose ref is known, written from its start, is
// streamed into the store instead of spooled.
func (p *pendingNode) streamable(off int64) bool {
	_, err := blobstore.ParseRef(p.name)
	return err == nil && off == 0 && p.content.Size() == 0 && !p.stored
}

// streamFailed abandons the stream after err: the file cannot be stored,
// and every later write and the commit say so.
func (p *pendingNode) streamFailed(err error) error {
	if err == nil {
		return nil
	}
	p.abandonStream()
	p.failed = err
	return err
}

func (p *pendingNode) abandonStream() {
	if p.stream != nil {
		p.stream.abandon()
		p.stream = nil
	}
}

func (p *pendingNode) read(dest []byte, off int64) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stream != nil || p.failed != nil {
		return 0, fmt.Errorf("%s is being stored as it is written and cannot be read back before it is closed: %w", p.name, syscall.EIO)
	}
	n, err := p.content.ReadAt(dest, off)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// commit stores what was written, if anything was written since the last
// commit. Under a hex name the content must hash to the name; a rewrite of
// a committed blob must not change it. On failure nothing is stored.
func (p *pendingNode) commit(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed != nil {
		return p.failed
	}
	if !p.dirty {
		return nil
	}
	var ref blobstore.Ref
	var err error
	if p.stream != nil {
		ref, err = p.finishStream()
	} else {
		ref, err = p.storeSpool(ctx)
	}
	if err != nil {
		return err
	}
	if !p.mtime.IsZero() {
		if err := p.dir.fsys.cfg.Catalog.SetBlobMtime(ctx, ref, p.mtime.UnixNano()); err != nil {
			return err
		}
	}
	p.ref, p.stored, p.dirty = ref, true, false
	return nil
}

// finishStream ends a stream that carried the whole file; WriteBlob has
// checked the content against the name.
func (p *pendingNode) finishStream() (blobstore.Ref, error) {
	stream := p.stream
	p.stream = nil
	ref, _ := blobstore.ParseRef(p.name) // streams start only under hex names
	err := stream.finish()
	if errors.Is(err, diskaccess.ErrRefMismatch) {
		return ref, p.mismatch(err)
	}
	return ref, err
}

// storeSpool stores the spooled content.
func (p *pendingNode) storeSpool(ctx context.Context) (blobstore.Ref, error) {
	ref, err := p.content.Ref()
	if err != nil {
		return ref, err
	}
	if want, err := blobstore.ParseRef(p.name); err == nil && want != ref {
		return ref, p.mismatch(fmt.Errorf("content hashes to %s", ref))
	}
	cfg := p.dir.fsys.cfg
	return ref, cfg.Controller.WriteBlobNoVerify(ctx, cfg.Volume, cfg.Collection, ref, p.content.Reader(), true)
}

// mismatch is the error for content that is not what its hex name says.
func (p *pendingNode) mismatch(cause error) error {
	if p.rewrite {
		return fmt.Errorf("a blob never changes (%v): %w", cause, syscall.EPERM)
	}
	return fmt.Errorf("%w (%v)", errNotThisRef, cause)
}

// discard drops the written data once no handle is open.
func (p *pendingNode) discard() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.abandonStream()
	p.released = true
	if p.handles == 0 {
		p.content.Close()
	}
}

// release is called when a handle closes.
func (p *pendingNode) release() {
	p.mu.Lock()
	p.handles--
	last := p.handles == 0
	closeSpool := last && p.released
	name, stored, rewrite := p.name, p.stored && !p.dirty, p.rewrite
	p.mu.Unlock()
	if closeSpool {
		p.content.Close()
	}
	if last && p.onRelease != nil {
		p.onRelease()
	}
	if last && rewrite {
		p.content.Close()
		return
	}
	if !last || !stored || rewrite {
		return
	}
	// A hex-named file, stored: from now on the metadata store lists it.
	if _, err := blobstore.ParseRef(name); err == nil {
		p.dir.dropPending(name, p)
		p.discard()
		p.dir.forget(name)
	}
}

// writeHandle is an open file being written.
type writeHandle struct {
	node *pendingNode
	once sync.Once
}

var (
	_ fs.FileWriter   = (*writeHandle)(nil)
	_ fs.FileReader   = (*writeHandle)(nil)
	_ fs.FileFlusher  = (*writeHandle)(nil)
	_ fs.FileFsyncer  = (*writeHandle)(nil)
	_ fs.FileReleaser = (*writeHandle)(nil)
)

// Write implements fs.FileWriter.
func (h *writeHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n, err := h.node.write(data, off)
	if err != nil {
		return uint32(n), h.node.dir.fsys.errno(describe("write", h.node.name), err)
	}
	return uint32(n), 0
}

// Read implements fs.FileReader.
func (h *writeHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.node.read(dest, off)
	if err != nil {
		return nil, h.node.dir.fsys.errno(describe("read", h.node.name), err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// Flush implements fs.FileFlusher: close(2) stores the file, so that its
// caller sees whether that worked.
func (h *writeHandle) Flush(ctx context.Context) syscall.Errno {
	return h.commit(ctx)
}

// Fsync implements fs.FileFsyncer: fsync stores the file too.
func (h *writeHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return h.commit(ctx)
}

func (h *writeHandle) commit(ctx context.Context) syscall.Errno {
	err := h.node.commit(ctx)
	if err == nil {
		return 0
	}
	errno := h.node.dir.fsys.errno(describe("store", h.node.name), err)
	if (errors.Is(err, errNotThisRef) || errors.Is(err, errOutOfOrder)) && !h.node.rewrite {
		// Nothing was stored; the wrong name does not stay behind.
		h.node.dir.dropPending(h.node.name, h.node)
		h.node.discard()
		h.node.dir.forget(h.node.name)
	}
	return errno
}

// Release implements fs.FileReleaser.
func (h *writeHandle) Release(ctx context.Context) syscall.Errno {
	h.once.Do(h.node.release)
	return 0
}
