package fusefs

import (
	"context"
	"errors"
	"io/fs"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore"
)

// Tree is what files/ needs from the metadata store: the named-file tree
// whose roots are the collections' folders. Every method is one
// transaction. Errors carry the errno to answer with (fs.ErrNotExist,
// fs.ErrExist, syscall.ENOTEMPTY, ...). metastore/badger implements it.
type Tree interface {
	CollectionFolders(ctx context.Context) ([]metastore.Entry, error)
	CreateCollectionFolder(ctx context.Context, name string, mode, uid, gid uint32) (*metastore.Inode, error)
	RemoveCollectionFolder(ctx context.Context, name string) error
	Inode(ctx context.Context, ino uint64) (*metastore.Inode, error)
	Lookup(ctx context.Context, parent uint64, name string) (*metastore.Inode, error)
	// LookupMany is Lookup of many names (ascending) at once: fn is called
	// with the index of each that is there.
	LookupMany(ctx context.Context, parent uint64, names []string, fn func(i int, n *metastore.Inode)) error
	ReadDir(ctx context.Context, parent uint64, after string, fn func(metastore.Entry) error) error
	Create(ctx context.Context, parent uint64, name string, n *metastore.Inode) (*metastore.Inode, error)
	// Remove returns the inode as the removal left it: Nlink 0 once its
	// last name is gone.
	Remove(ctx context.Context, parent uint64, name string, dir bool) (*metastore.Inode, error)
	// RemoveUnstored removes name in parent, with the file's other names,
	// if it is file ino and that was never stored, and says whether it did.
	RemoveUnstored(ctx context.Context, parent uint64, name string, ino uint64) (bool, error)
	Rename(ctx context.Context, oldParent uint64, oldName string, newParent uint64, newName string, noReplace bool) (*metastore.Inode, error)
	// Link gives inode ino (not a directory) another name, in the same
	// collection (EXDEV otherwise), and returns it with its link count.
	Link(ctx context.Context, ino uint64, parent uint64, name string) (*metastore.Inode, error)
	// Xattrs returns an inode's extended attributes (user.* names) in
	// name order; SetXattr and RemoveXattr change one, as setxattr(2) and
	// removexattr(2) do (EEXIST, ENODATA, ENOSPC beyond
	// metastore.MaxXattrsSize), and return the inode with its new ctime.
	Xattrs(ctx context.Context, ino uint64) ([]metastore.Xattr, error)
	SetXattr(ctx context.Context, ino uint64, name string, value []byte, flags uint32) (*metastore.Inode, error)
	RemoveXattr(ctx context.Context, ino uint64, name string) (*metastore.Inode, error)
	SetAttr(ctx context.Context, ino uint64, fn func(*metastore.Inode) error) (*metastore.Inode, error)
	CommitContent(ctx context.Context, ino uint64, ref blobstore.Ref, size, storedSize int64, mtime time.Time, attrs func(*metastore.Inode)) (*metastore.Inode, error)
	// CommitNewContent records a blob just stored on volumeId (what
	// diskaccess.MetadataStore.WriteBlobCreated does) and commits it as
	// file ino's content (CommitContent, with meta's ref and stored size),
	// in one transaction. On failure nothing is written: a file that is
	// gone is an fs.ErrNotExist error, and its blob is not recorded either.
	CommitNewContent(ctx context.Context, ino uint64, meta *diskaccess.BlobMeta, volumeId int, size int64, mtime time.Time, attrs func(*metastore.Inode)) (*metastore.Inode, error)
}

// treeTimeout is how long the kernel caches entries and attributes of the
// tree, as for blobs: the tree changes only through this mount, and the
// kernel learns of every change a request makes from the request itself
// (a create, rename or unlink updates its entries; a setattr's reply
// carries the attributes; a write invalidates them). What the daemon
// changes on its own it tells the kernel about: a file stored at close
// or fsync (forgetAttrs); and a file being written is answered with no
// caching at all (Getattr, child). With a second, as before, ls -l of a
// directory of 100,000 files looked every file up again on each run.
const treeTimeout = time.Hour

const filesIno = 3

// typeBits is the S_IF* type of a kind.
func typeBits(kind metastore.Kind) uint32 {
	switch kind {
	case metastore.KindDir:
		return syscall.S_IFDIR
	case metastore.KindSymlink:
		return syscall.S_IFLNK
	case metastore.KindFifo:
		return syscall.S_IFIFO
	case metastore.KindSocket:
		return syscall.S_IFSOCK
	case metastore.KindCharDev:
		return syscall.S_IFCHR
	case metastore.KindBlockDev:
		return syscall.S_IFBLK
	}
	return syscall.S_IFREG
}

// treeAttr fills the attributes of a tree inode.
func (f *FS) treeAttr(n *metastore.Inode, out *fuse.Attr) {
	out.Ino = n.Ino
	out.Mode = typeBits(n.Kind) | n.Mode&0o7777
	out.Nlink = n.Links()
	if n.Kind == metastore.KindDir {
		out.Nlink = n.DirLinks() // 2 and its subdirectories, as find expects
	}
	out.Size = uint64(n.Size)
	switch n.Kind {
	case metastore.KindFile:
		out.Blocks = uint64(n.StoredSize+511) / 512
	case metastore.KindSymlink:
		out.Size = uint64(len(n.Target))
	}
	out.Blksize = 1 << 17
	out.Rdev = n.Rdev
	out.Owner = fuse.Owner{Uid: n.UID, Gid: n.GID}
	atime := n.Atime
	if atime.IsZero() {
		atime = n.Mtime
	}
	out.SetTimes(&atime, &n.Mtime, &n.Ctime)
}

func setTreeTimeouts(out *fuse.EntryOut) {
	out.SetEntryTimeout(treeTimeout)
	out.SetAttrTimeout(treeTimeout)
}

// caller returns the uid and gid of the process making a request.
func caller(ctx context.Context) (uint32, uint32) {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid, c.Gid
	}
	return 0, 0
}

// treeNode is what every node of the tree has: its inode number and its
// last known record, which answers fstat after the name is gone (with
// nlink 0).
type treeNode struct {
	gofs.Inode
	fsys *FS
	ino  uint64

	mu       sync.Mutex // guards last, unlinked, and in fileNode its session
	last     metastore.Inode
	unlinked bool
}

// newTreeNode returns the node for a tree inode.
func (f *FS) newTreeNode(n *metastore.Inode) gofs.InodeEmbedder {
	var node interface {
		gofs.InodeEmbedder
		base() *treeNode
	}
	switch n.Kind {
	case metastore.KindDir:
		node = &dirNode{}
	case metastore.KindSymlink:
		node = &symlinkNode{}
	case metastore.KindFile:
		node = &fileNode{}
	default:
		node = &specialNode{}
	}
	t := node.base()
	t.fsys, t.ino, t.last = f, n.Ino, *n
	return node
}

func (t *treeNode) base() *treeNode { return t }

// child makes (or finds) the kernel inode of tree inode n, named name
// under parent.
func (f *FS) child(ctx context.Context, parent *gofs.Inode, name string, n *metastore.Inode, out *fuse.EntryOut) *gofs.Inode {
	f.treeAttr(n, &out.Attr)
	setTreeTimeouts(out)
	id := gofs.StableAttr{Mode: typeBits(n.Kind), Ino: n.Ino}
	node := parent.GetChild(name)
	if node == nil || node.StableAttr() != id {
		// New to the kernel (or the name is another inode's now): go-fuse
		// still keeps the one it knows by number, if any.
		node = parent.NewInode(ctx, f.newTreeNode(n), id)
	}
	rememberNode(node, n)
	if file, ok := node.Operations().(*fileNode); ok && file.writing() {
		// A file being written (under another name, or before its
		// entry was dropped) has its size in its session, not in n.
		var attr fuse.AttrOut
		if file.Getattr(ctx, nil, &attr) == 0 {
			out.Attr = attr.Attr
		}
		out.SetAttrTimeout(0)
	}
	return node
}

// collection is the collection the node lives in now: the name of its
// ancestor directly under files/ (a file can move between collections). ""
// if the node is no longer in the tree.
func (t *treeNode) collection() string {
	name, parent := t.Parent()
	for parent != nil {
		if _, top := parent.Operations().(*filesRoot); top {
			return name
		}
		name, parent = parent.Parent()
	}
	return ""
}

// remember keeps n as the node's record, unless the node knows a newer one:
// a lookup or stat that read the store before a commit finished must not
// put the old record back (every change sets the ctime, in its
// transaction).
func (t *treeNode) remember(n *metastore.Inode) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rememberLocked(n)
}

// rememberLocked is remember for a caller holding mu; it returns the newer
// of n and the record the node had.
func (t *treeNode) rememberLocked(n *metastore.Inode) *metastore.Inode {
	if n.Ctime.Before(t.last.Ctime) {
		last := t.last
		return &last
	}
	t.last, t.unlinked = *n, false
	return n
}

func (t *treeNode) markUnlinked() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unlinked = true
}

// record reads the inode; once the name is gone it answers with the last
// known record.
func (t *treeNode) record(ctx context.Context) (*metastore.Inode, bool, error) {
	n, err := t.fsys.cfg.Tree.Inode(ctx, t.ino)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err == nil {
		return t.rememberLocked(n), false, nil
	}
	if errors.Is(err, fs.ErrNotExist) || t.unlinked {
		last := t.last
		return &last, true, nil
	}
	return nil, false, err
}

func (t *treeNode) getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return t.getattrWith(ctx, out, nil)
}

// getattrWith answers with the record as adjust changes it (a file being
// written shows its new size and the attributes held for its commit).
func (t *treeNode) getattrWith(ctx context.Context, out *fuse.AttrOut, adjust func(*metastore.Inode)) syscall.Errno {
	n, gone, err := t.record(ctx)
	if err != nil {
		return t.fsys.errno("stat", err)
	}
	if adjust != nil {
		adjusted := *n
		adjust(&adjusted)
		n = &adjusted
	}
	t.fsys.treeAttr(n, &out.Attr)
	if gone {
		out.Nlink = 0
	}
	out.SetTimeout(treeTimeout)
	return 0
}

// setattr applies mode, owner and times (not size: files do that).
func (t *treeNode) setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if t.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	n, err := t.fsys.cfg.Tree.SetAttr(ctx, t.ino, func(n *metastore.Inode) error {
		applyAttrs(n, in)
		return nil
	})
	if err != nil {
		return t.fsys.errno("setattr", err)
	}
	t.remember(n)
	t.fsys.treeAttr(n, &out.Attr)
	out.SetTimeout(treeTimeout)
	return 0
}

func applyAttrs(n *metastore.Inode, in *fuse.SetAttrIn) {
	if mode, ok := in.GetMode(); ok {
		n.Mode = mode & 0o7777
	}
	if uid, ok := in.GetUID(); ok {
		n.UID = uid
	}
	if gid, ok := in.GetGID(); ok {
		n.GID = gid
	}
	if mtime, ok := in.GetMTime(); ok {
		n.Mtime = mtime
	}
	if atime, ok := in.GetATime(); ok {
		n.Atime = atime
	}
}
