package fusefs

import (
	"context"
	"encoding/hex"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// blobNode is a committed blob: ref/<hex>.
type blobNode struct {
	fs.Inode
	fsys *FS
	ref  blobstore.Ref

	mu       sync.Mutex     // guards rewrites
	rewrites []*pendingNode // rewrites open on this blob
}

var (
	_ fs.NodeGetattrer   = (*blobNode)(nil)
	_ fs.NodeSetattrer   = (*blobNode)(nil)
	_ fs.NodeOpener      = (*blobNode)(nil)
	_ fs.NodeGetxattrer  = (*blobNode)(nil)
	_ fs.NodeListxattrer = (*blobNode)(nil)
)

func (n *blobNode) record(ctx context.Context) (*diskaccess.BlobMeta, int64, syscall.Errno) {
	meta, mtime, err := n.fsys.cfg.Catalog.BlobRecord(ctx, n.ref)
	if err != nil {
		return nil, 0, n.fsys.errno(describe("stat", n.ref.String()), err)
	}
	return meta, mtime, 0
}

// Getattr implements fs.NodeGetattrer.
func (n *blobNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	meta, mtime, errno := n.record(ctx)
	if errno != 0 {
		return errno
	}
	n.fsys.blobAttr(meta, mtime, &out.Attr)
	out.SetTimeout(blobTimeout)
	return 0
}

// Setattr implements fs.NodeSetattrer. The modification time is the one
// attribute of a blob that can be set; mode and owner are accepted and
// ignored (so that rsync -a and cp -p do not fail); the size cannot change.
// A size change while the blob is open for rewriting applies to the
// rewrite: for open(O_TRUNC) the kernel opens first and then truncates
// (go-fuse does not take atomic O_TRUNC), sometimes without the handle.
func (n *blobNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if n.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	if size, ok := in.GetSize(); ok {
		rewrite := n.openRewrite()
		if wh, ok := fh.(*writeHandle); ok {
			rewrite = wh.node
		}
		if rewrite != nil { // a rewrite's size is its own
			if err := rewrite.truncate(ctx, int64(size)); err != nil {
				return n.fsys.errno(describe("truncate", n.ref.String()), err)
			}
			return n.Getattr(ctx, nil, out)
		}
		meta, _, errno := n.record(ctx)
		if errno != 0 {
			return errno
		}
		if size != uint64(meta.RealSize) {
			n.fsys.logf("truncate ref/%s: a blob never changes (EPERM)", n.ref)
			return syscall.EPERM
		}
	}
	if mtime, ok := in.GetMTime(); ok {
		if err := n.fsys.cfg.Catalog.SetBlobMtime(ctx, n.ref, mtime.UnixNano()); err != nil {
			return n.fsys.errno(describe("utimens", n.ref.String()), err)
		}
	}
	return n.Getattr(ctx, nil, out)
}

// Open implements fs.NodeOpener. Reads get a verified random-access reader
// and keep the kernel's page cache (the content never changes). Opening
// for writing starts a rewrite that must produce the same content.
func (n *blobNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return n.openForRewrite(ctx, flags)
	}
	blob, err := n.fsys.cfg.Controller.OpenBlobAnyCopy(ctx, n.ref, n.fsys.cfg.Keys, n.fsys.cfg.Volume)
	if err != nil {
		return nil, 0, n.fsys.errno(describe("open", n.ref.String()), err)
	}
	return n.fsys.newReadHandle(blob), fuse.FOPEN_KEEP_CACHE, 0
}

func (n *blobNode) openForRewrite(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if n.fsys.cfg.ReadOnly {
		return nil, 0, syscall.EROFS
	}
	if flags&syscall.O_APPEND != 0 {
		n.fsys.logf("open ref/%s for appending: a blob never changes (EPERM)", n.ref)
		return nil, 0, syscall.EPERM
	}
	p := newRewrite(n.fsys.ref, n.ref)
	h := p.newHandle(true) // holds the blob from now: a gc that has not condemned it yet keeps it
	if d := n.fsys.ref; !d.isCommitted(ctx, n.ref) {
		// A garbage collection removed the blob after the kernel looked it
		// up (it drops the kernel's entry, but a lookup may have come
		// just before): the write stores it anew, as a file created under
		// its hex name would.
		n.fsys.holds.remove(h)
		return d.addPending(newPendingNode(d, n.ref.String(), 0o644)).newHandle(true), fuse.FOPEN_DIRECT_IO, 0
	}
	p.onRelease = func() { n.endRewrite(p) }
	n.mu.Lock()
	n.rewrites = append(n.rewrites, p)
	n.mu.Unlock()
	return h, fuse.FOPEN_DIRECT_IO, 0
}

func (n *blobNode) openRewrite() *pendingNode {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.rewrites) == 0 {
		return nil
	}
	return n.rewrites[len(n.rewrites)-1]
}

func (n *blobNode) endRewrite(p *pendingNode) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rewrites = slices.DeleteFunc(n.rewrites, func(q *pendingNode) bool { return q == p })
}

// readHandle reads an open blob. Reads run in parallel; the lock guards
// only the position bookkeeping, never a read.
type readHandle struct {
	fsys *FS
	blob *diskaccess.BlobReader

	mu   sync.Mutex // guards next
	next int64      // where the previous read ended
}

// prefetchAhead is how far ahead of a sequential reader frames are opened
// in the background.
const prefetchAhead = 1 << 20

// sequential tells whether a read continues the previous one (the kernel's
// readahead may send neighbouring reads a little out of order).
func (h *readHandle) sequential(off int64, size int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	near := off == 0 || (h.next >= 0 && off >= h.next-prefetchAhead && off <= h.next+prefetchAhead)
	h.next = max(h.next, off+int64(size))
	return near
}

var (
	_ fs.FileReader   = (*readHandle)(nil)
	_ fs.FileReleaser = (*readHandle)(nil)
	_ fs.FileFsyncer  = (*readHandle)(nil)
)

// Read implements fs.FileReader. No byte of a frame that fails to
// authenticate is returned: the whole read is EIO.
func (h *readHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	start := time.Now()
	if h.sequential(off, len(dest)) {
		// This read's own frames too, so that they open on every core.
		h.blob.Prefetch(off, int64(len(dest))+prefetchAhead)
	}
	n, err := h.blob.ReadAt(dest, off)
	if err != nil && err != io.EOF {
		errno := h.fsys.errno(describe("read", h.blob.Ref().String()), err)
		h.fsys.observeRead(0, start, errno)
		return nil, errno
	}
	h.fsys.observeRead(n, start, 0)
	return fuse.ReadResultData(dest[:n]), 0
}

// Release implements fs.FileReleaser.
func (h *readHandle) Release(ctx context.Context) syscall.Errno {
	h.fsys.holds.remove(h)
	h.blob.Close()
	return 0
}

// newReadHandle reads blob, which it holds (holds.go) until its release.
func (f *FS) newReadHandle(blob *diskaccess.BlobReader) *readHandle {
	h := &readHandle{fsys: f, blob: blob, next: -1}
	f.holds.add(h)
	return h
}

// The extended attributes of a blob, all read-only.
const xattrPrefix = "user.stofuse."

var xattrNames = []string{"sha256", "crc32c", "size_on_disk", "compressed", "volumes"}

// blobXattr returns one of a blob's user.stofuse.* attributes.
func blobXattr(ctx context.Context, f *FS, ref blobstore.Ref, name string) (string, syscall.Errno) {
	meta, _, err := f.cfg.Catalog.BlobRecord(ctx, ref)
	if err != nil {
		return "", f.errno(describe("getxattr", ref.String()), err)
	}
	switch strings.TrimPrefix(name, xattrPrefix) {
	case "sha256":
		return ref.String(), 0
	case "crc32c":
		return hex.EncodeToString(meta.ExpectedCrc32), 0
	case "size_on_disk":
		return strconv.FormatInt(meta.SizeOnDisk, 10), 0
	case "compressed":
		return strconv.FormatBool(meta.IsCompressed), 0
	case "volumes":
		var names []string
		for _, id := range meta.Volumes {
			names = append(names, f.cfg.Catalog.VolumeName(ctx, id))
		}
		return strings.Join(names, ","), 0
	}
	return "", syscall.ENODATA
}

// Getxattr implements fs.NodeGetxattrer.
func (n *blobNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if !strings.HasPrefix(attr, xattrPrefix) {
		return 0, noXattr(attr)
	}
	value, errno := blobXattr(ctx, n.fsys, n.ref, attr)
	if errno != 0 {
		return 0, errno
	}
	return copyXattr(dest, value)
}

// Listxattr implements fs.NodeListxattrer.
func (n *blobNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	var list []byte
	for _, name := range xattrNames {
		list = append(append(list, xattrPrefix+name...), 0)
	}
	return copyXattr(dest, string(list))
}

// noXattr is the answer to getxattr of an attribute the mount does not
// have: ENODATA for a user.* name (the user.stofuse.* names are
// attributes), and ENOTSUP for security.*, system.* (ACLs) and trusted.*,
// which it does not support. ENOTSUP is also what lets ls -l stop asking: coreutils asks for
// security.selinux and system.posix_acl_access on every file (each a
// request to the daemon) until one answers "not supported", and then
// remembers that for the whole filesystem.
func noXattr(name string) syscall.Errno {
	if strings.HasPrefix(name, "user.") {
		return syscall.ENODATA
	}
	return syscall.ENOTSUP
}

// copyXattr follows getxattr(2): an empty dest asks for the size.
func copyXattr(dest []byte, value string) (uint32, syscall.Errno) {
	if len(dest) == 0 {
		return uint32(len(value)), 0
	}
	if len(dest) < len(value) {
		return uint32(len(value)), syscall.ERANGE
	}
	return uint32(copy(dest, value)), 0
}

// Fsync implements fs.FileFsyncer: fsync(2) of a file open for reading
// commits too, as on a local filesystem (what was written through other
// descriptors becomes durable).
func (h *readHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return h.fsys.durable(ctx, true)
}
