package fusefs

import (
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore"
)

// fileNode is a file of the tree. Its content is a blob; writing copies it
// (on write) into a session, which is stored as a new blob, and the file
// pointed at it, when a writer closes or fsyncs.
//
// Two locks, taken in this order: contentMu serializes what changes the
// content or stores it (writes, truncations, copy on write, commits, and
// reads of a session's spool), and may be held across I/O; treeNode.mu
// guards the record and the session's attributes (its size for stat, the
// held attributes, dirty) and is never held across I/O, so that stat and
// lookup never wait for sealing, storing or a metadata write.
type fileNode struct {
	treeNode
	contentMu sync.Mutex
	session   *writeSession // open writers' content; see writeSession for its locks
}

var (
	_ fs.NodeGetattrer   = (*fileNode)(nil)
	_ fs.NodeSetattrer   = (*fileNode)(nil)
	_ fs.NodeOpener      = (*fileNode)(nil)
	_ fs.NodeGetxattrer  = (*fileNode)(nil)
	_ fs.NodeListxattrer = (*fileNode)(nil)
	_ fs.NodeSetxattrer  = (*fileNode)(nil)
	_ fs.NodeAllocater   = (*fileNode)(nil)
)

// writeSession is the content of a file while it is open for writing. It
// starts as the committed blob (base) and is copied into a spool only when
// something needs the bytes: a write, or a truncation to a non-zero size.
//
// The session itself and its content, base, baseSize, length and dirty
// change with both of the node's locks held, and may be read with either;
// what content holds is the contentMu holder's alone; handles and held
// are guarded by mu.
type writeSession struct {
	content  *contentBuffer // nil until copied from base
	base     blobstore.Ref
	baseSize int64
	length   int64 // the content's size, for stat
	dirty    bool  // changed since the last commit
	handles  int
	held     heldAttrs // set while dirty, stored at the commit: see fileNode.hold
	heldGen  int       // counts changes to held, so a commit knows which it stored
}

// heldAttrs are the mode, owner and time set on a new file while its
// content is being written; they are stored with the content, in its
// commit's transaction, instead of a transaction (and a sync) each: tar
// sets all three on every file before it closes it.
type heldAttrs struct {
	mode, uid, gid          uint32
	hasMode, hasUID, hasGID bool
	mtime                   time.Time // zero: none
}

// add holds what in sets; a time of "now" is taken now, once.
func (h *heldAttrs) add(in *fuse.SetAttrIn) {
	if mode, ok := in.GetMode(); ok {
		h.mode, h.hasMode = mode&0o7777, true
	}
	if uid, ok := in.GetUID(); ok {
		h.uid, h.hasUID = uid, true
	}
	if gid, ok := in.GetGID(); ok {
		h.gid, h.hasGID = gid, true
	}
	if mtime, ok := in.GetMTime(); ok {
		h.mtime = mtime
	}
}

// apply gives n the held attributes.
func (h *heldAttrs) apply(n *metastore.Inode) {
	if h.hasMode {
		n.Mode = h.mode
	}
	if h.hasUID {
		n.UID = h.uid
	}
	if h.hasGID {
		n.GID = h.gid
	}
	if !h.mtime.IsZero() {
		n.Mtime = h.mtime
	}
}

// contentChanged records the content's new size and that it is dirty;
// the caller holds contentMu, and mu is taken here.
func (n *fileNode) contentChanged() {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.session
	s.length, s.dirty = s.content.Size(), true
}

func (n *fileNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	writing := false
	errno := n.getattrWith(ctx, out, func(record *metastore.Inode) {
		n.mu.Lock()
		defer n.mu.Unlock()
		if s := n.session; s != nil {
			writing = true
			record.Size = s.length
			s.held.apply(record)
		}
	})
	if errno == 0 && writing {
		out.SetTimeout(0)
	}
	return errno
}

// Setattr sets the size through a write session (committed at once when no
// writer has the file open), and mode, owner and times in the metadata: at
// once, or, while the content is dirty, with it when it is committed.
func (n *fileNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if n.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	if size, ok := in.GetSize(); ok {
		if errno := n.truncate(ctx, int64(size)); errno != 0 {
			return errno
		}
	}
	if n.hold(in) {
		return n.Getattr(ctx, fh, out)
	}
	if errno := n.setattr(ctx, in, out); errno != 0 {
		return errno
	}
	return n.Getattr(ctx, fh, out)
}

// hold keeps the mode, owner and time changes of in for the commit of a
// new file's content, and reports whether it did. A file that has content
// already gets them at once: a failed or never-finished rewrite must not
// take them back. (A new file that is never committed is removed at the
// next mount, attributes and all.)
func (n *fileNode) hold(in *fuse.SetAttrIn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.session
	if s == nil || !s.dirty {
		return false
	}
	if n.last.Committed {
		// Set at once; the time also for the commit, which would
		// otherwise set the time it happens.
		if mtime, ok := in.GetMTime(); ok {
			s.held.mtime = mtime
		}
		return false
	}
	s.held.add(in)
	s.heldGen++
	return true
}

func (n *fileNode) truncate(ctx context.Context, size int64) syscall.Errno {
	ctx = n.fsys.storing(ctx)
	n.contentMu.Lock()
	defer n.contentMu.Unlock()
	temporary := n.startSession()
	err := n.resize(ctx, size)
	if err == nil && temporary {
		err = n.commitContent(ctx)
	}
	if temporary {
		n.endSession()
	}
	if err == nil && temporary {
		n.forgetAttrs()
	}
	return n.fsys.errno("truncate", err)
}

// resize sets the session's size; the caller holds contentMu.
func (n *fileNode) resize(ctx context.Context, size int64) error {
	s := n.session
	if size == 0 {
		n.replaceContent(newContentBuffer(n.fsys.cfg.SpoolDir)) // nothing to copy
	} else if err := n.materialize(ctx); err != nil {
		return err
	} else if err := s.content.Truncate(size); err != nil {
		return err
	}
	n.contentChanged()
	return nil
}

// replaceContent gives the session new content, closing the old; the
// caller holds contentMu.
func (n *fileNode) replaceContent(content *contentBuffer) {
	n.mu.Lock()
	old := n.session.content
	n.session.content = content
	n.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

// startSession makes the write session if there is none, and reports
// whether it did; the caller holds contentMu.
func (n *fileNode) startSession() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.session != nil {
		return false
	}
	s := &writeSession{}
	if n.last.Committed {
		s.base, s.baseSize, s.length = n.last.Ref, n.last.Size, n.last.Size
	}
	n.session = s
	return true
}

// endSession drops the session; the caller holds contentMu.
func (n *fileNode) endSession() {
	n.mu.Lock()
	s := n.session
	n.session = nil
	n.mu.Unlock()
	if s.content != nil {
		s.content.Close()
	}
}

// materialize copies the committed content into the session's spool (copy
// on write), streaming, in bounded memory; the caller holds contentMu.
func (n *fileNode) materialize(ctx context.Context) error {
	s := n.session
	if s.content != nil {
		return nil
	}
	content := newContentBuffer(n.fsys.cfg.SpoolDir)
	if s.baseSize > 0 {
		blob, err := n.fsys.cfg.Controller.OpenBlob(ctx, s.base, n.fsys.cfg.Keys, n.fsys.cfg.Volume)
		if err != nil {
			content.Close()
			return err
		}
		_, err = io.Copy(&appender{content}, io.NewSectionReader(blob, 0, blob.Size()))
		blob.Close()
		if err != nil {
			content.Close()
			return err
		}
	}
	n.replaceContent(content)
	return nil
}

// appender turns WriteAt into Write.
type appender struct{ c *contentBuffer }

func (a *appender) Write(p []byte) (int, error) { return a.c.WriteAt(p, a.c.Size()) }

// openForWriting starts (or joins) the write session; created files start
// dirty, so that even an empty one is stored at close.
func (n *fileNode) openForWriting(ctx context.Context, created bool) (*treeWriteHandle, syscall.Errno) {
	n.contentMu.Lock()
	defer n.contentMu.Unlock()
	n.startSession()
	if created {
		if err := n.resize(ctx, 0); err != nil {
			if n.session.handles == 0 {
				n.endSession()
			}
			return nil, n.fsys.errno("create", err)
		}
	}
	n.mu.Lock()
	n.session.handles++
	n.mu.Unlock()
	return &treeWriteHandle{node: n}, 0
}

// Open implements fs.NodeOpener: writers share one session; readers read
// the session while there is one, else the committed blob.
func (n *fileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		if n.fsys.cfg.ReadOnly {
			return nil, 0, syscall.EROFS
		}
		h, errno := n.openForWriting(ctx, false)
		if errno == 0 && flags&syscall.O_TRUNC != 0 {
			errno = n.truncate(ctx, 0)
		}
		return h, fuse.FOPEN_DIRECT_IO, errno
	}
	n.mu.Lock()
	writing := n.session != nil
	record := n.last
	n.mu.Unlock()
	if writing || !record.Committed || record.Size == 0 {
		return &treeWriteHandle{node: n, readOnly: true}, fuse.FOPEN_DIRECT_IO, 0
	}
	blob, err := n.fsys.cfg.Controller.OpenBlob(ctx, record.Ref, n.fsys.cfg.Keys, n.fsys.cfg.Volume)
	if err != nil {
		return nil, 0, n.fsys.errno("open", err)
	}
	return &readHandle{fsys: n.fsys, blob: blob, next: -1}, 0, 0
}

func (n *fileNode) write(ctx context.Context, data []byte, off int64) (int, error) {
	ctx = n.fsys.storing(ctx)
	n.contentMu.Lock()
	defer n.contentMu.Unlock()
	if err := n.materialize(ctx); err != nil {
		return 0, err
	}
	written, err := n.session.content.WriteAt(data, off)
	n.contentChanged()
	return written, err
}

// read reads the session's content, or the blob it started from, or the
// committed blob. Reads of a spool wait for a write or commit in progress.
func (n *fileNode) read(ctx context.Context, dest []byte, off int64) (int, error) {
	n.contentMu.Lock()
	s := n.session
	if s != nil && s.content != nil {
		defer n.contentMu.Unlock()
		return readAll(s.content, dest, off)
	}
	n.mu.Lock()
	ref, size := n.last.Ref, n.last.Size
	if !n.last.Committed {
		size = 0
	}
	if s != nil {
		ref, size = s.base, s.baseSize
	}
	n.mu.Unlock()
	n.contentMu.Unlock()
	if size == 0 {
		return 0, nil
	}
	blob, err := n.fsys.cfg.Controller.OpenBlob(ctx, ref, n.fsys.cfg.Keys, n.fsys.cfg.Volume)
	if err != nil {
		return 0, err
	}
	defer blob.Close()
	return readAll(blob, dest, off)
}

// readAll is ReadAt with io.EOF (a read at or past the end) as no error.
func readAll(r io.ReaderAt, dest []byte, off int64) (int, error) {
	got, err := r.ReadAt(dest, off)
	if err == io.EOF {
		err = nil
	}
	return got, err
}

// commitContent stores the session's content as a blob and points the
// file at it, with the attributes held for it, in one metadata
// transaction; the caller holds contentMu, not mu. A file removed
// meanwhile is not brought back.
func (n *fileNode) commitContent(ctx context.Context) error {
	s := n.session
	if s == nil || !s.dirty {
		return nil
	}
	if err := n.materialize(ctx); err != nil {
		return err
	}
	ref, err := s.content.Ref()
	if err != nil {
		return err
	}
	collection := n.collection()
	if collection == "" {
		n.committed(nil, 0) // removed while open: its content goes nowhere
		return nil
	}
	meta, err := n.fsys.storeContent(ctx, collection, ref, s.content)
	if err != nil {
		return err
	}
	n.mu.Lock()
	held, heldGen := s.held, s.heldGen
	n.mu.Unlock()
	mtime := held.mtime
	if mtime.IsZero() {
		mtime = time.Now()
	}
	record, err := n.fsys.cfg.Tree.CommitContent(ctx, n.ino, ref, s.content.Size(), meta.SizeOnDisk, mtime, held.apply)
	if errors.Is(err, iofs.ErrNotExist) {
		n.committed(nil, 0) // removed while open: its content goes nowhere
		return nil
	}
	if err != nil {
		return err
	}
	if later := n.committed(record, heldGen); later != nil {
		// Attributes set while the content was stored: not in its
		// transaction, so now.
		record, err := n.fsys.cfg.Tree.SetAttr(ctx, n.ino, func(r *metastore.Inode) error {
			later.apply(r)
			return nil
		})
		if err != nil {
			return err
		}
		n.remember(record)
	}
	return nil
}

// committed records the end of a commit: the record it wrote (nil: the
// file is gone) becomes the node's and the session's base, and the
// session is clean. It returns the attributes held since generation
// heldGen, which the commit did not store. The caller holds contentMu.
func (n *fileNode) committed(record *metastore.Inode, heldGen int) *heldAttrs {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.session
	s.dirty = false
	if record == nil {
		return nil
	}
	n.rememberLocked(record)
	s.base, s.baseSize = record.Ref, record.Size
	later := s.held
	s.held = heldAttrs{}
	if s.heldGen == heldGen {
		return nil
	}
	return &later
}

func (n *fileNode) commit(ctx context.Context) syscall.Errno {
	ctx = n.fsys.storing(ctx)
	start := time.Now()
	n.contentMu.Lock()
	n.mu.Lock()
	changed := n.session != nil && n.session.dirty
	var size int64
	if changed {
		size = n.session.length
	}
	n.mu.Unlock()
	err := n.commitContent(ctx)
	n.contentMu.Unlock()
	if changed {
		n.fsys.observeStored(size, start, toErrno(err))
	}
	if err == nil && changed {
		n.forgetAttrs()
	}
	return n.fsys.errno("store", err)
}

// forgetAttrs makes the kernel ask again for the attributes (mtime, size
// on disk) that storing the file changed; a negative offset leaves its
// cached pages alone.
func (n *fileNode) forgetAttrs() {
	if errno := n.NotifyContent(-1, 0); errno != 0 && errno != syscall.ENOENT {
		n.fsys.logf("invalidating the attributes of inode %d: %v", n.ino, errno)
	}
}

// Allocate implements fs.NodeAllocater: blobs are written whole, so there
// is nothing to reserve; mode 0 grows the file as fallocate(2) does,
// FALLOC_FL_KEEP_SIZE changes nothing, other modes are not supported.
func (n *fileNode) Allocate(ctx context.Context, fh fs.FileHandle, off uint64, size uint64, mode uint32) syscall.Errno {
	if n.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	switch mode {
	case unix.FALLOC_FL_KEEP_SIZE:
		return 0
	case 0:
	default:
		return syscall.EOPNOTSUPP
	}
	n.mu.Lock()
	current := n.last.Size
	if n.session != nil {
		current = n.session.length
	}
	n.mu.Unlock()
	if end := int64(off + size); end > current {
		return n.truncate(ctx, end)
	}
	return 0
}

func (n *fileNode) release() {
	n.contentMu.Lock()
	defer n.contentMu.Unlock()
	n.mu.Lock()
	s := n.session
	if s == nil {
		n.mu.Unlock()
		return
	}
	s.handles--
	last, dirty := s.handles == 0, s.dirty
	n.mu.Unlock()
	if last {
		if dirty {
			// Flush failed or never came: nothing of it was stored.
			n.fsys.logf("inode %d closed with content that was not stored", n.ino)
		}
		n.endSession()
	}
}

// treeWriteHandle is an open file of the tree that may be written (or a
// reader of a file being written).
type treeWriteHandle struct {
	node     *fileNode
	readOnly bool
}

var (
	_ fs.FileWriter   = (*treeWriteHandle)(nil)
	_ fs.FileReader   = (*treeWriteHandle)(nil)
	_ fs.FileFlusher  = (*treeWriteHandle)(nil)
	_ fs.FileFsyncer  = (*treeWriteHandle)(nil)
	_ fs.FileReleaser = (*treeWriteHandle)(nil)
)

func (h *treeWriteHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n, err := h.node.write(ctx, data, off)
	return uint32(n), h.node.fsys.errno("write", err)
}

func (h *treeWriteHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.node.read(ctx, dest, off)
	if err != nil {
		return nil, h.node.fsys.errno("read", err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// Flush stores the file at close(2), so that close reports failure.
func (h *treeWriteHandle) Flush(ctx context.Context) syscall.Errno {
	if h.readOnly {
		return 0
	}
	if errno := h.node.commit(ctx); errno != 0 {
		return errno
	}
	return h.node.fsys.durable(ctx, false)
}

// Fsync stores the file and commits: once it returns, the file survives
// a power loss.
func (h *treeWriteHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if !h.readOnly {
		if errno := h.node.commit(ctx); errno != 0 {
			return errno
		}
	}
	return h.node.fsys.durable(ctx, true)
}

func (h *treeWriteHandle) Release(ctx context.Context) syscall.Errno {
	if !h.readOnly {
		h.node.release()
	}
	return 0
}

// Getxattr implements fs.NodeGetxattrer: user.stofuse.ref is the blob the
// file's content is; the blob's own attributes follow it.
func (n *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	n.mu.Lock()
	record := n.last
	n.mu.Unlock()
	if !strings.HasPrefix(attr, xattrPrefix) || !record.Committed {
		return 0, syscall.ENODATA
	}
	if attr == xattrPrefix+"ref" {
		return copyXattr(dest, record.Ref.String())
	}
	value, errno := blobXattr(ctx, n.fsys, record.Ref, attr)
	if errno != 0 {
		return 0, errno
	}
	return copyXattr(dest, value)
}

func (n *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	n.mu.Lock()
	committed := n.last.Committed
	n.mu.Unlock()
	if !committed {
		return copyXattr(dest, "")
	}
	list := xattrPrefix + "ref\x00"
	for _, name := range xattrNames {
		list += xattrPrefix + name + "\x00"
	}
	return copyXattr(dest, list)
}

// Setxattr refuses: a file's only extended attributes are stofuse's.
func (n *fileNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return syscall.ENOTSUP
}
