package fusefs

import (
	"context"
	"crypto/sha256"
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

// pendingNode is a file written into ref/ (see refDir for the rules). Its
// content goes one of three ways:
//   - spooled (any name): stored as a blob when the last writer closes it,
//     or fsyncs it;
//   - streamed (a hex name, written from its start): fed to WriteBlob as it
//     is written, checked against the name at close;
//   - checked (a rewrite of a committed blob): only hashed, to see that the
//     same content was written; nothing is stored.
type pendingNode struct {
	fs.Inode
	dir       *refDir
	rewrite   bool   // a rewrite of a committed blob: checked, never stored
	onRelease func() // called when the last handle closes

	// writeMu serializes writes and commits, which may block on the store
	// (a stream's queue, sealing and storing at close); mu is never held
	// across that, so stat and lookup never wait for the disk.
	writeMu sync.Mutex

	mu       sync.Mutex // guards everything below
	name     string
	content  *contentBuffer // spooled content, when neither streamed nor checked
	stream   *blobStream    // streamed content, while the stream runs
	check    *hashCheck     // a rewrite's hash
	size     int64          // the size of streamed or checked content
	failed   error          // why the file cannot be stored; cleared by truncating to 0
	dirty    bool           // written since the last commit
	stored   bool           // ref holds the content as last committed
	streamed bool           // stored by a stream: reads go to the blob
	ref      blobstore.Ref
	mode     uint32
	mtime    time.Time // set by utimens; zero: none
	created  time.Time
	handles  int  // open handles
	writers  int  // open handles that may write
	released bool // discarded: content dropped once no handle is left
}

var (
	_ fs.NodeGetattrer = (*pendingNode)(nil)
	_ fs.NodeSetattrer = (*pendingNode)(nil)
	_ fs.NodeOpener    = (*pendingNode)(nil)
)

func newPendingNode(d *refDir, name string, mode uint32) *pendingNode {
	return &pendingNode{
		dir:     d,
		name:    name,
		content: newContentBuffer(d.fsys.cfg.SpoolDir),
		dirty:   true,
		mode:    mode & 0o7777,
		created: time.Now(),
	}
}

// newRewrite is a rewrite of committed blob ref: only checked.
func newRewrite(d *refDir, ref blobstore.Ref) *pendingNode {
	p := newPendingNode(d, ref.String(), 0o644)
	p.content.Close()
	p.rewrite = true
	p.content, p.check, p.dirty, p.ref = nil, newHashCheck(), false, ref
	return p
}

func (p *pendingNode) newHandle(writable bool) *writeHandle {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.handles++
	if writable {
		p.writers++
	}
	return &writeHandle{node: p, writable: writable}
}

// currentName is the name the file has now (rename changes it).
func (p *pendingNode) currentName() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.name
}

// storedSize is the size of what was written.
func (p *pendingNode) storedSize() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sizeLocked()
}

// committedRef returns the blob the file was stored as.
func (p *pendingNode) committedRef() (blobstore.Ref, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ref, p.stored
}

// sizeLocked is the file's size; the caller holds mu.
func (p *pendingNode) sizeLocked() int64 {
	if p.content != nil {
		return p.content.Size()
	}
	return p.size
}

// fillAttr gives the written size and times; mode as the writer set it.
func (p *pendingNode) fillAttr(ctx context.Context, out *fuse.Attr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.dir.fsys
	out.Mode = syscall.S_IFREG | p.mode
	out.Nlink = 1
	out.Size = uint64(p.sizeLocked())
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 1 << 17
	out.Owner = fuse.Owner{Uid: f.cfg.UID, Gid: f.cfg.GID}
	mtime := p.created
	if !p.mtime.IsZero() {
		mtime = p.mtime
	}
	out.SetTimes(&mtime, &mtime, &mtime)
}

// Getattr implements fs.NodeGetattrer.
func (p *pendingNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	p.fillAttr(ctx, &out.Attr)
	out.SetTimeout(pendingTimeout)
	return 0
}

// Setattr implements fs.NodeSetattrer: size, mode and times; a time set
// after the file is stored is recorded for its blob.
func (p *pendingNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if err := p.setattr(ctx, in); err != nil {
		return p.dir.fsys.errno(describe("setattr", p.currentName()), err)
	}
	return p.Getattr(ctx, fh, out)
}

func (p *pendingNode) setattr(ctx context.Context, in *fuse.SetAttrIn) error {
	if size, ok := in.GetSize(); ok {
		if err := p.truncate(int64(size)); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if mode, ok := in.GetMode(); ok {
		p.mode = mode & 0o7777
	}
	if mtime, ok := in.GetMTime(); ok {
		p.mtime = mtime
		if p.stored && !p.dirty && p.check == nil {
			return p.dir.fsys.cfg.Catalog.SetBlobMtime(ctx, p.ref, mtime.UnixNano())
		}
	}
	return nil
}

// truncate sets the size. Truncating to 0 starts the content over, also
// after a failure (a retry with O_TRUNC).
func (p *pendingNode) truncate(size int64) error {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.content == nil && p.stream == nil && p.check == nil && size == p.size {
		return nil // stored by its stream, and left as it is
	}
	p.dirty = true
	switch {
	case size == 0:
		p.abandonStream()
		p.failed = nil
		if p.check != nil {
			p.check, p.size = newHashCheck(), 0
			return nil
		}
		if p.content == nil { // stored by its stream: start over
			p.content, p.size = newContentBuffer(p.dir.fsys.cfg.SpoolDir), 0
		}
		return p.content.Truncate(0)
	case p.failed != nil:
		return p.failed
	case p.check != nil:
		if size != p.check.size {
			return errBlobNeverChanges
		}
		return nil
	case p.stream != nil:
		err := p.stream.truncate(size)
		p.size = p.stream.size
		return p.fail(err)
	case p.content == nil: // stored by its stream: a blob never changes
		return p.fail(errBlobNeverChanges)
	}
	return p.content.Truncate(size)
}

// Open implements fs.NodeOpener: a written name can be read back, and
// reopened for writing while it is not yet renamed.
func (p *pendingNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	writable := flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0
	if p.dir.fsys.cfg.ReadOnly && writable {
		return nil, 0, syscall.EROFS
	}
	h := p.newHandle(writable)
	if writable && flags&syscall.O_TRUNC != 0 {
		if err := p.truncate(0); err != nil {
			h.Release(ctx)
			return nil, 0, p.dir.fsys.errno(describe("open", p.currentName()), err)
		}
	}
	return h, fuse.FOPEN_DIRECT_IO, 0
}

func (p *pendingNode) write(ctx context.Context, data []byte, off int64) (int, error) {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	p.mu.Lock()
	if p.failed != nil {
		p.mu.Unlock()
		return 0, p.failed
	}
	p.dirty = true
	if p.check != nil {
		err := p.fail(p.check.writeAt(data, off))
		p.size = p.check.size
		p.mu.Unlock()
		return len(data), err
	}
	if p.content == nil && p.stream == nil {
		// Stored by its stream at an earlier close: a blob never changes.
		err := p.fail(fmt.Errorf("%s was stored when it was closed: %w", p.name, errBlobNeverChanges))
		p.mu.Unlock()
		return 0, err
	}
	if p.stream == nil && p.streamable(off) {
		ref, _ := blobstore.ParseRef(p.name)
		stream, err := startStream(ctx, p.dir.fsys, ref)
		if err != nil {
			p.mu.Unlock()
			return 0, err
		}
		p.stream = stream
		p.content.Close()
		p.content = nil
	}
	stream := p.stream
	if stream == nil {
		defer p.mu.Unlock()
		return p.content.WriteAt(data, off)
	}
	p.mu.Unlock()
	err := stream.writeAt(data, off) // may block on the store: writeMu only
	p.mu.Lock()
	defer p.mu.Unlock()
	p.size = stream.size
	if err != nil {
		return 0, p.fail(err)
	}
	return len(data), nil
}

// emptyRef names the blob of no bytes.
var emptyRef = blobstore.Ref(sha256.Sum256(nil))

// awaitingContent: a file created (or truncated for a rewrite) that
// nothing has been written to yet. A shell's `cat f > ref/NAME` and dd
// open the file and close a duplicate of its descriptor before the first
// write, so such a close does not end the file: under a hex name it fails
// (nothing written matches the name) and the writes that follow are
// checked at the next close; under another name the empty content is only
// stored if the file is closed for good with nothing written. The caller
// holds mu.
func (p *pendingNode) awaitingContent() bool {
	if !p.dirty || p.stream != nil || p.failed != nil {
		return false
	}
	if ref, err := blobstore.ParseRef(p.name); err == nil && ref == emptyRef {
		return false // nothing written is this name's content
	}
	if p.check != nil {
		return p.check.size == 0
	}
	return p.content != nil && p.content.Size() == 0
}

// streamable: a file whose ref is known, written from its start, is
// streamed into the store instead of spooled; the caller holds mu.
func (p *pendingNode) streamable(off int64) bool {
	_, err := blobstore.ParseRef(p.name)
	return err == nil && off == 0 && p.content.Size() == 0
}

// fail records why the file cannot be stored and stops its stream; the
// caller holds mu.
func (p *pendingNode) fail(err error) error {
	if err == nil {
		return nil
	}
	p.abandonStream()
	p.failed = err
	return err
}

// abandonStream stops a running stream, storing nothing; the content is
// then empty. The caller holds mu.
func (p *pendingNode) abandonStream() {
	if p.stream != nil {
		p.stream.abandon()
		p.stream, p.size = nil, 0
		p.content = newContentBuffer(p.dir.fsys.cfg.SpoolDir)
	}
}

// read serves reads: the spool, or the stored blob.
func (p *pendingNode) read(ctx context.Context, dest []byte, off int64) (int, error) {
	p.mu.Lock()
	switch {
	case p.content != nil:
		defer p.mu.Unlock()
		n, err := p.content.ReadAt(dest, off)
		if err == io.EOF {
			err = nil
		}
		return n, err
	case p.stream != nil || p.failed != nil:
		p.mu.Unlock()
		return 0, fmt.Errorf("%s is stored as it is written and cannot be read back before it is closed: %w", p.name, syscall.EIO)
	}
	ref := p.ref // stored by a stream, or a rewrite of ref
	p.mu.Unlock()
	blob, err := p.dir.fsys.cfg.Controller.OpenBlob(ctx, ref, p.dir.fsys.cfg.Keys, p.dir.fsys.cfg.Volume)
	if err != nil {
		return 0, err
	}
	defer blob.Close()
	n, err := blob.ReadAt(dest, off)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// commitAt says why a file is committed.
type commitAt int

const (
	atClose   commitAt = iota // the last writer's close (Flush), or a rename
	atFsync                   // fsync: a streamed file is left alone
	atRelease                 // the last handle went with nothing written
)

// commit stores what was written, if anything was written since the last
// commit, and reports whether it stored anything. Under a hex name the
// content must hash to the name; a rewrite must reproduce its blob. On
// failure nothing is stored. From fsync, a streamed file, or one nothing
// was written to yet, is left alone: it can only be checked once complete.
// Storing runs without mu (writeMu keeps writers out), so that stat and
// lookup do not wait for the disk.
func (p *pendingNode) commit(ctx context.Context, at commitAt) (bool, error) {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.failed != nil:
		return false, p.failed
	case !p.dirty:
		return false, nil
	case at == atFsync && (p.stream != nil || p.awaitingContent()):
		return false, nil
	case at == atRelease && (p.handles > 0 || p.released || !p.awaitingContent()):
		return false, nil // opened again since, or written meanwhile
	case p.check != nil:
		if !p.check.matches(p.ref) {
			return false, p.fail(errBlobNeverChanges)
		}
		p.dirty = false
		return false, nil
	}
	name := p.name
	p.mu.Unlock()
	var ref blobstore.Ref
	var err error
	if p.stream != nil {
		ref, err = p.finishStream(ctx, name)
	} else {
		ref, err = p.storeSpool(ctx, name)
	}
	p.mu.Lock()
	if p.stream != nil {
		p.stream, p.streamed = nil, err == nil
		if err != nil {
			p.size, p.content = 0, newContentBuffer(p.dir.fsys.cfg.SpoolDir)
		}
	}
	if err != nil {
		return false, p.fail(err)
	}
	if !p.mtime.IsZero() {
		if err := p.dir.fsys.cfg.Catalog.SetBlobMtime(ctx, ref, p.mtime.UnixNano()); err != nil {
			return false, err
		}
	}
	p.ref, p.stored, p.dirty = ref, true, false
	return true, nil
}

// finishStream ends a stream that carried the whole file; WriteBlob checks
// the content against the name. The caller holds writeMu, not mu: reads
// meanwhile see the stream and are told to wait for the close.
func (p *pendingNode) finishStream(ctx context.Context, name string) (blobstore.Ref, error) {
	ref, _ := blobstore.ParseRef(name) // streams start only under hex names
	_, err := p.stream.finish(ctx)
	if errors.Is(err, diskaccess.ErrRefMismatch) {
		return ref, fmt.Errorf("%w (%v)", errNotThisRef, err)
	}
	return ref, err
}

// storeSpool stores the spooled content; the caller holds writeMu, which
// keeps the content as it is.
func (p *pendingNode) storeSpool(ctx context.Context, name string) (blobstore.Ref, error) {
	ref, err := p.content.Ref()
	if err != nil {
		return ref, err
	}
	if want, err := blobstore.ParseRef(name); err == nil && want != ref {
		return ref, fmt.Errorf("%w (it hashes to %s)", errNotThisRef, ref)
	}
	_, err = p.dir.fsys.storeContent(ctx, p.dir.fsys.cfg.Collection, ref, p.content)
	return ref, err
}

// discard drops the written data once no handle is open.
func (p *pendingNode) discard() {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.abandonStream()
	p.released = true
	if p.handles == 0 && p.content != nil {
		p.content.Close()
	}
}

// release is called when a handle closes.
func (p *pendingNode) release(writable bool) {
	p.mu.Lock()
	p.handles--
	if writable {
		p.writers--
	}
	last := p.handles == 0
	if last && p.released && p.content != nil {
		p.content.Close()
	}
	unwritten := last && !p.rewrite && !p.released && p.awaitingContent()
	p.mu.Unlock()
	if unwritten {
		p.settleUnwritten()
	}
	if last && p.onRelease != nil {
		p.onRelease()
	}
}

// settleUnwritten ends a file closed for good with nothing written (touch;
// see awaitingContent): under a hex name it is dropped, under another its
// empty content is stored. Both check again under the locks: the file may
// have been opened again since its last handle closed.
func (p *pendingNode) settleUnwritten() {
	if _, err := blobstore.ParseRef(p.currentName()); err != nil {
		p.store(context.Background(), atRelease)
		return
	}
	p.writeMu.Lock()
	p.mu.Lock()
	unwritten := p.handles == 0 && !p.released && p.awaitingContent()
	if unwritten {
		p.released = true
		p.content.Close()
	}
	name := p.name
	p.mu.Unlock()
	p.writeMu.Unlock()
	if unwritten {
		p.dir.fsys.logf("ref/%s was closed with nothing written: not stored", name)
		p.dir.leave(name, p)
	}
}

// writeHandle is an open file of ref/ being written, or read back.
type writeHandle struct {
	node     *pendingNode
	writable bool
	once     sync.Once
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
	n, err := h.node.write(ctx, data, off)
	if err != nil {
		return uint32(n), h.node.dir.fsys.errno(describe("write", h.node.currentName()), err)
	}
	return uint32(n), 0
}

// Read implements fs.FileReader.
func (h *writeHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.node.read(ctx, dest, off)
	if err != nil {
		return nil, h.node.dir.fsys.errno(describe("read", h.node.currentName()), err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// Flush implements fs.FileFlusher: the last writer's close(2) stores the
// file, so that its caller sees whether that worked. Readers' closes, and
// closes of a writer while another writer is still at work, store nothing.
func (h *writeHandle) Flush(ctx context.Context) syscall.Errno {
	p := h.node
	p.mu.Lock()
	lastWriter := h.writable && p.writers == 1
	awaiting := p.awaitingContent()
	_, err := blobstore.ParseRef(p.name)
	namedByRef := err == nil
	p.mu.Unlock()
	switch {
	case !lastWriter:
		return 0
	case awaiting && p.rewrite:
		return syscall.EPERM // emptying a committed blob
	case awaiting && namedByRef:
		return syscall.EIO // no content hashes to the name; see release
	case awaiting:
		return 0 // stored at release if nothing is written
	}
	if errno := p.store(ctx, atClose); errno != 0 {
		return errno
	}
	return p.dir.fsys.durable(ctx, false)
}

// Fsync implements fs.FileFsyncer: fsync stores the file as it is now.
func (h *writeHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if h.writable {
		if errno := h.node.store(ctx, atFsync); errno != 0 {
			return errno
		}
	}
	return h.node.dir.fsys.durable(ctx, true)
}

// store commits the file (see commit) and settles its name: a file that
// failed to store, or that is now stored under its hex name, leaves the
// names being written.
func (p *pendingNode) store(ctx context.Context, at commitAt) syscall.Errno {
	ctx = p.dir.fsys.storing(ctx)
	start := time.Now()
	stored, err := p.commit(ctx, at)
	if stored || err != nil {
		defer func() { p.dir.fsys.observeStored(p.storedSize(), start, toErrno(err)) }()
	}
	d, name := p.dir, p.currentName()
	if err != nil {
		errno := d.fsys.errno(describe("store", name), err)
		if !p.rewrite && at != atFsync {
			// Nothing was stored: the name does not stay behind.
			d.leave(name, p)
		}
		return errno
	}
	if ref, stored := p.committedRef(); stored && at != atFsync && !p.rewrite && ref.String() == name {
		// Stored under its hex name: from now on the metadata store lists
		// it; open handles keep reading it through this node.
		d.leave(name, p)
	}
	return 0
}

// Release implements fs.FileReleaser.
func (h *writeHandle) Release(ctx context.Context) syscall.Errno {
	h.once.Do(func() { h.node.release(h.writable) })
	return 0
}
