package fusefs

import (
	"context"
	"errors"
	iofs "io/fs"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore"
)

// fileNode is a file of the tree. Its content is a blob; writing copies it
// (on write) into a session, which is stored as a new blob, and the file
// pointed at it, when a writer closes or fsyncs.
//
// Its locks are its session's (see session): contentMu is the content
// lock, which also starts and ends the session; treeNode.mu is the
// attribute lock, never held during I/O, and guards the record, the
// session's attributes, writers and the held attributes as well. The
// node adds files/'s rules to the session: copy on write from the
// committed blob, any content, the collection the file is in now, the
// held attributes and the tree record, committed in one transaction.
type fileNode struct {
	treeNode
	contentMu sync.Mutex
	session   *session  // while open for writing or truncated; changes with both locks held
	writers   int       // open handles that may write; changes with both locks held
	held      heldAttrs // set while the content is changed, stored at its commit: see hold
	heldGen   int       // counts changes to held, so a commit knows which it stored
}

var (
	_ fs.NodeGetattrer   = (*fileNode)(nil)
	_ fs.NodeSetattrer   = (*fileNode)(nil)
	_ fs.NodeOpener      = (*fileNode)(nil)
	_ fs.NodeGetxattrer  = (*fileNode)(nil)
	_ fs.NodeListxattrer = (*fileNode)(nil)
	_ fs.NodeSetxattrer  = (*fileNode)(nil)
	_ fs.NodeAllocater   = (*fileNode)(nil)
	_ sessionPolicy      = (*fileNode)(nil)
)

// named implements sessionPolicy: a name in files/ says nothing of the
// content. (collection is treeNode's.)
func (n *fileNode) named() (blobstore.Ref, bool) { return blobstore.Ref{}, false }

// heldAttrs are the mode, owner and times set on a new file while its
// content is being written; they are stored with the content, in its
// commit's transaction, instead of a transaction (and a sync) each: tar
// sets all three on every file before it closes it.
type heldAttrs struct {
	mode, uid, gid          uint32
	hasMode, hasUID, hasGID bool
	mtime, atime            time.Time // zero: none
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
	if atime, ok := in.GetATime(); ok {
		h.atime = atime
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
	if !h.atime.IsZero() {
		n.Atime = h.atime
	}
}

func (n *fileNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	writing := false
	errno := n.getattrWith(ctx, out, func(record *metastore.Inode) {
		n.mu.Lock()
		defer n.mu.Unlock()
		if s := n.session; s != nil {
			writing = true
			record.Size = s.size
			n.held.apply(record)
		}
	})
	if errno == 0 && writing {
		out.SetTimeout(0)
	}
	return errno
}

// writing reports whether the file has a write session.
func (n *fileNode) writing() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.session != nil
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
	if s := n.session; s == nil || !s.changed() {
		return false
	}
	if n.last.Committed {
		// Set at once; the time also for the commit, which would
		// otherwise set the time it happens.
		if mtime, ok := in.GetMTime(); ok {
			n.held.mtime = mtime
		}
		return false
	}
	n.held.add(in)
	n.heldGen++
	return true
}

func (n *fileNode) truncate(ctx context.Context, size int64) syscall.Errno {
	ctx = n.fsys.storing(ctx)
	n.contentMu.Lock()
	defer n.contentMu.Unlock()
	temporary := n.startSession()
	err := n.session.truncate(ctx, size)
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

// startSession makes the write session if there is none, and reports
// whether it did; the caller holds contentMu.
func (n *fileNode) startSession() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.session != nil {
		return false
	}
	var blob blobstore.Ref
	var size int64
	if n.last.Committed {
		if size = n.last.Size; size > 0 {
			blob = n.last.Ref
		}
	}
	n.session = newSession(n.fsys, n, copyOnWrite, &n.contentMu, &n.mu, blob, size)
	n.held, n.heldGen = heldAttrs{}, 0
	return true
}

// endSession drops the session; the caller holds contentMu.
func (n *fileNode) endSession() {
	n.mu.Lock()
	s := n.session
	n.session = nil
	n.mu.Unlock()
	s.discard()
}

// openForWriting starts (or joins) the write session; created files start
// dirty, so that even an empty one is stored at close.
func (n *fileNode) openForWriting(ctx context.Context, created bool) (*treeWriteHandle, syscall.Errno) {
	n.contentMu.Lock()
	defer n.contentMu.Unlock()
	n.startSession()
	if created {
		if err := n.session.truncate(ctx, 0); err != nil {
			if n.writers == 0 {
				n.endSession()
			}
			return nil, n.fsys.errno("create", err)
		}
	}
	n.mu.Lock()
	n.writers++
	n.mu.Unlock()
	return n.fsys.newTreeHandle(n, false), 0
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
		return n.fsys.newTreeHandle(n, true), fuse.FOPEN_DIRECT_IO, 0
	}
	blob, err := n.fsys.cfg.Controller.OpenBlobAnyCopy(ctx, record.Ref, n.fsys.cfg.Keys, n.fsys.cfg.Volume)
	if err != nil {
		return nil, 0, n.fsys.errno("open", err)
	}
	return n.fsys.newReadHandle(blob), 0, 0
}

func (n *fileNode) write(ctx context.Context, data []byte, off int64) (int, error) {
	ctx = n.fsys.storing(ctx)
	n.contentMu.Lock()
	defer n.contentMu.Unlock()
	return n.session.write(ctx, data, off)
}

// read reads the session while there is one (see session.read), else the
// committed blob.
func (n *fileNode) read(ctx context.Context, dest []byte, off int64) (int, error) {
	n.mu.Lock()
	s, ref, size := n.session, n.last.Ref, n.last.Size
	if !n.last.Committed {
		size = 0
	}
	n.mu.Unlock()
	if s != nil {
		return s.read(ctx, dest, off)
	}
	if size == 0 {
		return 0, nil
	}
	blob, err := n.fsys.cfg.Controller.OpenBlobAnyCopy(ctx, ref, n.fsys.cfg.Keys, n.fsys.cfg.Volume)
	if err != nil {
		return 0, err
	}
	defer blob.Close()
	return readAll(blob, dest, off)
}

// commitContent stores the session's content as a blob (see
// session.commit) and points the file at it, with the attributes held for
// it, in one metadata transaction, which records the blob too when it is
// new; the caller holds contentMu, not mu.
func (n *fileNode) commitContent(ctx context.Context) error {
	s := n.session
	if s == nil {
		return nil
	}
	var later *heldAttrs
	_, _, err := s.commit(ctx, recorder{with: func(ctx context.Context, ref blobstore.Ref, size int64, meta *diskaccess.BlobMeta, created bool) error {
		var err error
		later, err = n.commitTree(ctx, ref, size, meta, created)
		return err
	}})
	if err != nil || later == nil {
		return err
	}
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
	return nil
}

// commitTree points the file at the blob a commit stored, with the
// attributes held for it, recording the blob in the same transaction if
// it is new (created), and returns the attributes held since, which it
// did not store. A file removed meanwhile is not brought back: its content
// goes nowhere, and a new blob is recorded alone.
func (n *fileNode) commitTree(ctx context.Context, ref blobstore.Ref, size int64, meta *diskaccess.BlobMeta, created bool) (*heldAttrs, error) {
	n.mu.Lock()
	held, heldGen := n.held, n.heldGen
	n.mu.Unlock()
	mtime := held.mtime
	if mtime.IsZero() {
		mtime = time.Now()
	}
	tree, volume := n.fsys.cfg.Tree, n.fsys.cfg.Volume
	var record *metastore.Inode
	var err error
	if created {
		record, err = tree.CommitNewContent(ctx, n.ino, meta, volume, size, mtime, held.apply)
	} else {
		record, err = tree.CommitContent(ctx, n.ino, ref, size, meta.SizeOnDisk, mtime, held.apply)
	}
	if errors.Is(err, iofs.ErrNotExist) {
		if created {
			return nil, n.fsys.cfg.Controller.MetadataStore().WriteBlobCreated(ctx, meta, volume)
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return n.committed(record, heldGen), nil
}

// committed records the end of a commit: the record it wrote becomes the
// node's, and the session is stored in the same critical section (so
// that hold sees both or neither). It returns the attributes held since
// generation heldGen, which the commit did not store. The caller holds
// contentMu.
func (n *fileNode) committed(record *metastore.Inode, heldGen int) *heldAttrs {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rememberLocked(record)
	n.session.storedLocked(record.Ref)
	later := n.held
	n.held = heldAttrs{}
	if n.heldGen == heldGen {
		return nil
	}
	return &later
}

func (n *fileNode) commit(ctx context.Context) syscall.Errno {
	n.contentMu.Lock()
	errno, changed := n.commitLocked(ctx)
	n.contentMu.Unlock()
	if changed {
		n.forgetAttrs() // stored or not, what the kernel has is not what the store has
	}
	return errno
}

// commitLocked is commit for a caller holding contentMu; it also says
// whether there was anything to store (the caller then has the kernel
// forget the file's attributes, once it no longer holds contentMu).
func (n *fileNode) commitLocked(ctx context.Context) (syscall.Errno, bool) {
	ctx = n.fsys.storing(ctx)
	start := time.Now()
	n.mu.Lock()
	changed := n.session != nil && n.session.changed()
	var size int64
	if changed {
		size = n.session.size
	}
	n.mu.Unlock()
	err := n.commitContent(ctx)
	if changed {
		n.fsys.observeStored(size, start, toErrno(err))
	}
	return n.fsys.errno("store", err), changed
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
		current = n.session.size
	}
	n.mu.Unlock()
	if end := int64(off + size); end > current {
		return n.truncate(ctx, end)
	}
	return 0
}

// release ends a writer's open. The last one stores what its flush did
// not see: a shared writable mapping writes its pages back after close(2)
// (at msync, at munmap or when the process exits), before the kernel
// releases the file; a failure then reaches no caller, so it is logged.
func (n *fileNode) release(ctx context.Context) {
	n.contentMu.Lock()
	n.mu.Lock()
	s := n.session
	if s == nil {
		n.mu.Unlock()
		n.contentMu.Unlock()
		return
	}
	// The last writer decides, and stores, under contentMu: no other
	// release or open can come between.
	storeLate := n.writers == 1 && s.changed()
	n.mu.Unlock()
	var errno syscall.Errno
	if storeLate {
		errno, _ = n.commitLocked(ctx)
	}
	n.mu.Lock()
	n.writers--
	last, dirty := n.writers == 0, s.changed()
	n.mu.Unlock()
	if last {
		if dirty {
			n.fsys.logf("inode %d closed with content that was not stored", n.ino)
		}
		n.endSession()
	}
	n.contentMu.Unlock()
	if !storeLate {
		return
	}
	n.forgetAttrs()
	if errno == 0 {
		errno = n.fsys.durable(ctx, false)
	}
	if errno != 0 {
		n.fsys.logf("inode %d: storing what was written after its close: %v", n.ino, errno)
		n.dropIfNeverStored(ctx)
	}
}

// dropIfNeverStored removes a file whose content could not be stored
// at all (its first store failed, at close and again at release): its
// name must not stay behind as an empty file that looks complete. A file
// stored before keeps its last stored content, as a failed rewrite does.
func (n *fileNode) dropIfNeverStored(ctx context.Context) {
	n.mu.Lock()
	committed := n.last.Committed
	n.mu.Unlock()
	name, parent := n.Parent()
	if committed || parent == nil {
		return
	}
	dir, ok := parent.Operations().(*dirNode)
	if !ok {
		return
	}
	removed, err := n.fsys.cfg.Tree.RemoveUnstored(ctx, dir.ino, name, n.ino)
	if err != nil || !removed {
		if err != nil {
			n.fsys.logf("removing %q, whose content could not be stored: %v", name, err)
		}
		return
	}
	n.markUnlinked()
	n.fsys.logf("removed %q: its content could not be stored", name)
	if errno := parent.NotifyDelete(name, n.EmbeddedInode()); errno != 0 && errno != syscall.ENOENT {
		n.fsys.logf("invalidating the entry %q: %v", name, errno)
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
	if errno := h.node.clearPrivilegesForWrite(ctx); errno != 0 {
		return 0, errno
	}
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
	h.node.fsys.holds.remove(h)
	if !h.readOnly {
		h.node.release(ctx)
	}
	return 0
}

// newTreeHandle opens n, which the handle holds (holds.go) until its
// release.
func (f *FS) newTreeHandle(n *fileNode, readOnly bool) *treeWriteHandle {
	h := &treeWriteHandle{node: n, readOnly: readOnly}
	f.holds.add(h)
	return h
}

// Getxattr implements fs.NodeGetxattrer: user.stofuse.ref is the blob the
// file's content is; the blob's own attributes follow it.
func (n *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	n.mu.Lock()
	record := n.last
	n.mu.Unlock()
	if !strings.HasPrefix(attr, xattrPrefix) {
		return n.treeNode.Getxattr(ctx, attr, dest)
	}
	if !record.Committed || record.Ref.IsZero() { // no content: no blob
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

// Listxattr implements fs.NodeListxattrer: the blob's attributes (for a
// file with content), then the file's own.
func (n *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	n.mu.Lock()
	committed := n.last.Committed && !n.last.Ref.IsZero()
	n.mu.Unlock()
	var list []string
	if committed {
		list = append(list, xattrPrefix+"ref")
		for _, name := range xattrNames {
			list = append(list, xattrPrefix+name)
		}
	}
	own, errno := n.xattrNames(ctx)
	if errno != 0 {
		return 0, errno
	}
	return copyXattrList(dest, append(list, own...))
}
