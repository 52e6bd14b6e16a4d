package fusefs

import (
	"context"
	"crypto/sha256"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// pendingNode is a file written into ref/ (see refDir for the rules). Its
// content is a session, which goes one of three ways:
//   - spooled (any name): stored as a blob when the last writer closes it,
//     or fsyncs it;
//   - streamed (a hex name, written from its start): fed to the store as it
//     is written, checked against the name at close;
//   - checked (a rewrite of a committed blob): only hashed, to see that the
//     same content was written; nothing is stored.
//
// The node adds ref/'s rules to the session: the name (its ref is what the
// content must hash to, and what it is streamed under), the shell's early
// close of a duplicate descriptor (awaitingContent), when a close, fsync
// or release commits, a failure that sticks (a file that could not be
// stored fails until it is truncated to 0, and its name leaves), and the
// modification time of the blob stored.
type pendingNode struct {
	fs.Inode
	dir       *refDir
	onRelease func() // called when the last handle closes

	contentMu sync.Mutex // the session's content lock (see session)
	session   *session   // never changes

	mu       sync.Mutex // the session's attribute lock; guards it and everything below
	name     string
	mode     uint32
	mtime    time.Time // set by utimens; zero: none
	created  time.Time
	handles  int  // open handles
	writers  int  // open handles that may write
	released bool // discarded: content dropped once no handle is left
	// fsynced: an fsync came while the content could not be stored yet (a
	// stream is stored only once complete), so the close that stores it
	// commits, to keep fsync's promise as soon as it can be kept.
	fsynced bool
}

var (
	_ fs.NodeGetattrer = (*pendingNode)(nil)
	_ fs.NodeSetattrer = (*pendingNode)(nil)
	_ fs.NodeOpener    = (*pendingNode)(nil)
	_ sessionPolicy    = (*pendingNode)(nil)
)

// newPendingNode is a new file: an empty content, to be stored even if
// nothing is written.
func newPendingNode(d *refDir, name string, mode uint32) *pendingNode {
	p := newNode(d, name, mode, copyOnWrite, blobstore.Ref{})
	p.session.startOver()
	return p
}

// newRewrite is a rewrite of committed blob ref: only checked.
func newRewrite(d *refDir, ref blobstore.Ref) *pendingNode {
	return newNode(d, ref.String(), 0o644, mustMatch, ref)
}

func newNode(d *refDir, name string, mode uint32, rule baseRule, blob blobstore.Ref) *pendingNode {
	p := &pendingNode{dir: d, name: name, mode: mode & 0o7777, created: time.Now()}
	p.session = newSession(d.fsys, p, rule, &p.contentMu, &p.mu, blob, 0)
	return p
}

// rewrite: a rewrite of a committed blob, checked, never stored.
func (p *pendingNode) rewrite() bool { return p.session.rule == mustMatch }

// named implements sessionPolicy: a hex name is the content's ref.
func (p *pendingNode) named() (blobstore.Ref, bool) {
	ref, err := blobstore.ParseRef(p.currentName())
	return ref, err == nil
}

// collection implements sessionPolicy: the mount's.
func (p *pendingNode) collection() string { return p.dir.fsys.cfg.Collection }

func (p *pendingNode) newHandle(writable bool) *writeHandle {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.handles++
	if writable {
		p.writers++
	}
	h := &writeHandle{node: p, writable: writable}
	p.dir.fsys.holds.add(h)
	return h
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
	return p.session.size
}

// committedRef returns the blob the file was stored as.
func (p *pendingNode) committedRef() (blobstore.Ref, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.session.blob, p.session.state == stored
}

// fillAttr gives the written size and times; mode as the writer set it.
func (p *pendingNode) fillAttr(ctx context.Context, out *fuse.Attr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.dir.fsys
	out.Mode = syscall.S_IFREG | p.mode
	out.Nlink = 1
	out.Size = uint64(p.session.size)
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
		if err := p.truncate(ctx, int64(size)); err != nil {
			return err
		}
	}
	if mode, ok := in.GetMode(); ok {
		p.mu.Lock()
		p.mode = mode & 0o7777
		p.mu.Unlock()
	}
	if mtime, ok := in.GetMTime(); ok {
		return p.setMtime(ctx, mtime)
	}
	return nil
}

// setMtime keeps the time for the blob, and sets it on the blob if the
// file is stored already. The content lock keeps a commit from storing in
// between.
func (p *pendingNode) setMtime(ctx context.Context, mtime time.Time) error {
	p.contentMu.Lock()
	defer p.contentMu.Unlock()
	p.mu.Lock()
	p.mtime = mtime
	ref, isStored := p.session.blob, p.session.state == stored && !p.rewrite()
	p.mu.Unlock()
	if !isStored {
		return nil
	}
	return p.dir.fsys.cfg.Catalog.SetBlobMtime(ctx, ref, mtime.UnixNano())
}

// truncate sets the size (see session.truncate).
func (p *pendingNode) truncate(ctx context.Context, size int64) error {
	p.contentMu.Lock()
	defer p.contentMu.Unlock()
	return p.session.truncate(ctx, size)
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
		if err := p.truncate(ctx, 0); err != nil {
			h.Release(ctx)
			return nil, 0, p.dir.fsys.errno(describe("open", p.currentName()), err)
		}
	}
	return h, fuse.FOPEN_DIRECT_IO, 0
}

func (p *pendingNode) write(ctx context.Context, data []byte, off int64) (int, error) {
	p.contentMu.Lock()
	defer p.contentMu.Unlock()
	return p.session.write(ctx, data, off)
}

// read serves reads: the spool, or the stored blob.
func (p *pendingNode) read(ctx context.Context, dest []byte, off int64) (int, error) {
	return p.session.read(ctx, dest, off)
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
	s := p.session
	if s.state != spooling && s.state != checking || s.size != 0 {
		return false
	}
	ref, err := blobstore.ParseRef(p.name)
	return err != nil || ref != emptyRef // else nothing written is this name's content
}

// commitAt says why a file is committed.
type commitAt int

const (
	atClose   commitAt = iota // the last writer's close (Flush), or a rename
	atFsync                   // fsync: a streamed file is left alone
	atRelease                 // the last handle went with nothing written
)

// commit stores what was written, if anything was written since the last
// commit, and reports whether it stored anything (see session.commit).
// From fsync, a streamed file, or one nothing was written to yet, is left
// alone: it can only be checked once complete. A failure sticks: nothing
// is stored, and the file fails until it is truncated to 0.
func (p *pendingNode) commit(ctx context.Context, at commitAt) (bool, error) {
	p.contentMu.Lock()
	defer p.contentMu.Unlock()
	p.mu.Lock()
	skip, err := p.skipCommit(at)
	p.mu.Unlock()
	if skip || err != nil {
		return false, err
	}
	record := recorder{with: p.dir.fsys.recordExplicit(), after: func(ref blobstore.Ref, size int64, meta *diskaccess.BlobMeta) error {
		return p.recordMtime(ctx, ref)
	}}
	ref, meta, err := p.session.commit(ctx, record)
	if err == nil && (meta == nil || record.with == nil) {
		// Nothing stored (a rewrite that matched its blob), or no
		// Catalog to record it with the blob: marked now.
		err = p.dir.fsys.storedExplicitly(ctx, ref)
	}
	if err != nil {
		return false, p.session.fail(err)
	}
	return meta != nil, nil
}

// ExplicitStores is what a Catalog that keeps explicit stores implements
// (found by type assertion): a blob written into ref/ is one, also when it
// was stored already, so that a garbage collection keeps it until it is
// released.
type ExplicitStores interface {
	// MarkExplicit records that the recorded blob ref was stored
	// explicitly. It may be called any number of times; a blob not
	// recorded is an fs.ErrNotExist error.
	MarkExplicit(ctx context.Context, ref blobstore.Ref) error
	// RecordExplicit records blob meta.Ref as stored explicitly while its
	// writer holds the ref's lock (a diskaccess.RecordFunc, for
	// volumeID): with created, the new blob's record and its mark in one
	// transaction, else the mark of the recorded blob. So a garbage
	// collection, which condemns under the same lock, never finds the
	// blob stored and not yet marked. If it fails, nothing of it is
	// recorded.
	RecordExplicit(ctx context.Context, meta *diskaccess.BlobMeta, volumeID int, created bool) error
}

// recordExplicit is what a commit through ref/ records with its blob:
// the explicit store (nil: the Catalog keeps none, and the store records
// the blob alone).
func (f *FS) recordExplicit() func(ctx context.Context, ref blobstore.Ref, size int64, meta *diskaccess.BlobMeta, created bool) error {
	stores, ok := f.cfg.Catalog.(ExplicitStores)
	if !ok {
		return nil
	}
	return func(ctx context.Context, ref blobstore.Ref, size int64, meta *diskaccess.BlobMeta, created bool) error {
		return stores.RecordExplicit(ctx, meta, f.cfg.Volume, created)
	}
}

// storedExplicitly marks a blob committed through ref/ (stored, or found
// stored) as an explicit store, before the close that stored it returns.
func (f *FS) storedExplicitly(ctx context.Context, ref blobstore.Ref) error {
	if stores, ok := f.cfg.Catalog.(ExplicitStores); ok {
		return stores.MarkExplicit(ctx, ref)
	}
	return nil
}

// skipCommit tells whether a commit at has nothing to do, or the error it
// returns; the caller holds mu.
func (p *pendingNode) skipCommit(at commitAt) (bool, error) {
	s := p.session
	switch {
	case s.state == failed:
		return true, s.err
	case !s.changed():
		return true, nil
	case at == atFsync && (s.state == streaming || p.awaitingContent()):
		return true, nil
	case at == atRelease && (p.handles > 0 || p.released || !p.awaitingContent()):
		return true, nil // opened again since, or written meanwhile
	}
	return false, nil
}

// recordMtime gives the blob just stored the time set on the file.
func (p *pendingNode) recordMtime(ctx context.Context, ref blobstore.Ref) error {
	p.mu.Lock()
	mtime := p.mtime
	p.mu.Unlock()
	if mtime.IsZero() {
		return nil
	}
	return p.dir.fsys.cfg.Catalog.SetBlobMtime(ctx, ref, mtime.UnixNano())
}

// discard drops the written data once no handle is open.
func (p *pendingNode) discard() {
	p.contentMu.Lock()
	defer p.contentMu.Unlock()
	p.session.abandon()
	p.mu.Lock()
	p.released = true
	drop := p.handles == 0
	p.mu.Unlock()
	if drop {
		p.session.discard()
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
	drop := last && p.released
	unwritten := last && !p.rewrite() && !p.released && p.awaitingContent()
	p.mu.Unlock()
	if drop {
		p.dropReleased()
	}
	if unwritten {
		p.settleUnwritten()
	}
	if last && p.onRelease != nil {
		p.onRelease()
	}
}

// dropReleased drops the content of a discarded file whose last handle
// closed, unless it was opened again meanwhile.
func (p *pendingNode) dropReleased() {
	p.contentMu.Lock()
	defer p.contentMu.Unlock()
	p.mu.Lock()
	drop := p.handles == 0 && p.released
	p.mu.Unlock()
	if drop {
		p.session.discard()
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
	p.contentMu.Lock()
	p.mu.Lock()
	unwritten := p.handles == 0 && !p.released && p.awaitingContent()
	if unwritten {
		p.released = true
	}
	name := p.name
	p.mu.Unlock()
	if unwritten {
		p.session.discard()
	}
	p.contentMu.Unlock()
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
	case awaiting && p.rewrite():
		return syscall.EPERM // emptying a committed blob
	case awaiting && namedByRef:
		return syscall.EIO // no content hashes to the name; see release
	case awaiting:
		return 0 // stored at release if nothing is written
	}
	if errno := p.store(ctx, atClose); errno != 0 {
		return errno
	}
	p.mu.Lock()
	fsynced := p.fsynced
	p.fsynced = false
	p.mu.Unlock()
	return p.dir.fsys.durable(ctx, fsynced)
}

// Fsync implements fs.FileFsyncer: fsync stores the file as it is now.
//
// A stream (a file named by its hash, stored as it is written) can be
// stored only once complete, at its close: fsync then commits what else
// was stored, and the close commits the stream (dd conv=fsync into
// ref/<hex> fsyncs after its last write, before its close).
func (h *writeHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	p := h.node
	if h.writable {
		if errno := p.store(ctx, atFsync); errno != 0 {
			return errno
		}
		p.mu.Lock()
		p.fsynced = p.session.changed()
		p.mu.Unlock()
	}
	return p.dir.fsys.durable(ctx, true)
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
		if !p.rewrite() && at != atFsync {
			// Nothing was stored: the name does not stay behind.
			d.leave(name, p)
		}
		return errno
	}
	if ref, stored := p.committedRef(); stored && at != atFsync && !p.rewrite() && ref.String() == name {
		// Stored under its hex name: from now on the metadata store lists
		// it; open handles keep reading it through this node.
		d.leave(name, p)
	}
	return 0
}

// Release implements fs.FileReleaser.
func (h *writeHandle) Release(ctx context.Context) syscall.Errno {
	h.once.Do(func() {
		h.node.dir.fsys.holds.remove(h)
		h.node.release(h.writable)
	})
	return 0
}
