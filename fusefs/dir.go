package fusefs

import (
	"context"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/stofuse/stofuse/metastore"
)

// dirNode is a directory of the tree (a collection's folder is one).
type dirNode struct {
	treeNode
}

var (
	_ fs.NodeLookuper       = (*dirNode)(nil)
	_ fs.NodeOpendirHandler = (*dirNode)(nil)
	_ fs.NodeGetattrer      = (*dirNode)(nil)
	_ fs.NodeSetattrer      = (*dirNode)(nil)
	_ fs.NodeMkdirer        = (*dirNode)(nil)
	_ fs.NodeCreater        = (*dirNode)(nil)
	_ fs.NodeUnlinker       = (*dirNode)(nil)
	_ fs.NodeRmdirer        = (*dirNode)(nil)
	_ fs.NodeRenamer        = (*dirNode)(nil)
	_ fs.NodeSymlinker      = (*dirNode)(nil)
	_ fs.NodeMknoder        = (*dirNode)(nil)
	_ fs.NodeLinker         = (*dirNode)(nil)
	_ fs.NodeFsyncer        = (*dirNode)(nil)
)

func (d *dirNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return d.getattr(ctx, out)
}

func (d *dirNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return d.setattr(ctx, in, out)
}

func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := checkName(name); errno != 0 {
		return nil, errno
	}
	n, err := d.fsys.cfg.Tree.Lookup(ctx, d.ino, name)
	if err != nil {
		return nil, d.fsys.errno("lookup "+name, err)
	}
	return d.fsys.child(ctx, d.EmbeddedInode(), name, n, out), 0
}

// OpendirHandle implements fs.NodeOpendirHandler: the entries are read
// from the metadata store a page at a time (see listing).
func (d *dirNode) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return newListing(d.fsys, "listing a directory", nil, func() pageReader { return d.fsys.treePages(d.ino) }, d.EmbeddedInode(), d.Lookup, d.lookupMany), 0, 0
}

// lookupMany is the listing's batchLookuper: the entries' inodes in one
// transaction (Tree.LookupMany), each then as Lookup makes it.
func (d *dirNode) lookupMany(ctx context.Context, entries []fuse.DirEntry) (lookedUp, error) {
	names := make([]string, len(entries))
	for i := range entries {
		names[i] = entries[i].Name
	}
	found := treeLookups{dir: d, names: names, inodes: make([]*metastore.Inode, len(entries))}
	err := d.fsys.cfg.Tree.LookupMany(ctx, d.ino, names, func(i int, n *metastore.Inode) { found.inodes[i] = n })
	return found, err
}

// treeLookups are the inodes that dirNode.lookupMany found.
type treeLookups struct {
	dir    *dirNode
	names  []string
	inodes []*metastore.Inode // nil: not found
}

func (t treeLookups) lookup(ctx context.Context, k int, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n := t.inodes[k]
	if n == nil {
		return t.dir.Lookup(ctx, t.names[k], out) // gone, or damaged: which it says
	}
	return t.dir.fsys.child(ctx, t.dir.EmbeddedInode(), t.names[k], n, out), 0
}

// create makes a new inode named name here.
func (d *dirNode) create(ctx context.Context, name string, n *metastore.Inode, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if d.fsys.cfg.ReadOnly {
		return nil, syscall.EROFS
	}
	if errno := checkName(name); errno != 0 {
		return nil, errno
	}
	now := time.Now()
	n.UID, n.GID = caller(ctx)
	d.mu.Lock()
	inheritGroup(&d.last, n)
	d.mu.Unlock()
	n.Mtime, n.Ctime, n.Atime = now, now, now
	created, err := d.fsys.cfg.Tree.Create(ctx, d.ino, name, n)
	if err != nil {
		return nil, d.fsys.errno("create "+name, err)
	}
	return d.fsys.child(ctx, d.EmbeddedInode(), name, created, out), 0
}

func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return d.create(ctx, name, &metastore.Inode{Kind: metastore.KindDir, Mode: mode & 0o7777}, out)
}

func (d *dirNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return d.create(ctx, name, &metastore.Inode{Kind: metastore.KindSymlink, Mode: 0o777, Target: target}, out)
}

// Mknod makes a FIFO, socket (bind(2) makes one), character or block
// device: a record in the tree, as a symlink is. (The kernel lets only
// root make a device.) A regular file made with mknod is empty, and
// recorded as such at once: committed, with no blob (as an empty file
// that a snapshot restores), so that it survives a remount.
func (d *dirNode) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	var kind metastore.Kind
	switch mode & syscall.S_IFMT {
	case syscall.S_IFIFO:
		kind = metastore.KindFifo
	case syscall.S_IFSOCK:
		kind = metastore.KindSocket
	case syscall.S_IFCHR:
		kind = metastore.KindCharDev
	case syscall.S_IFBLK:
		kind = metastore.KindBlockDev
	case syscall.S_IFREG, 0:
		return d.create(ctx, name, &metastore.Inode{Kind: metastore.KindFile, Mode: mode & 0o7777, Committed: true}, out)
	default:
		return nil, syscall.EINVAL
	}
	n := &metastore.Inode{Kind: kind, Mode: mode & 0o7777}
	if kind.IsDevice() {
		n.Rdev = dev
	}
	return d.create(ctx, name, n, out)
}

// Create makes a file, uncommitted until its first close: a file whose
// writer dies before that does not survive a remount.
func (d *dirNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	inode, errno := d.create(ctx, name, &metastore.Inode{Kind: metastore.KindFile, Mode: mode & 0o7777}, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	file := inode.Operations().(*fileNode)
	handle, errno := file.openForWriting(ctx, true)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	// Not 0, as child and Getattr answer for a file being written: the
	// open's permission check (default_permissions), right after this
	// reply, would ask for the attributes again. What writing changes is
	// not served from this cache: every write through FOPEN_DIRECT_IO has
	// the kernel mark size and times stale, every SETATTR reply comes
	// with no caching, and the close invalidates them (forgetAttrs).
	out.SetAttrTimeout(createdAttrTimeout)
	return inode, handle, fuse.FOPEN_DIRECT_IO, 0
}

// createdAttrTimeout is how long the kernel keeps the attributes of a file
// it has just created (see Create).
const createdAttrTimeout = time.Second

// Link makes a hard link: another name of a file, symlink or special file
// of the tree, in its collection (EXDEV across collections, as between
// filesystems; also for what ref/ and snapshots/ show). A directory is
// EPERM, as link(2) says.
func (d *dirNode) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if d.fsys.cfg.ReadOnly {
		return nil, syscall.EROFS
	}
	if errno := checkName(name); errno != 0 {
		return nil, errno
	}
	node, ok := target.(interface{ base() *treeNode })
	if !ok {
		return nil, syscall.EXDEV
	}
	if _, isDir := target.(*dirNode); isDir {
		return nil, syscall.EPERM
	}
	n, err := d.fsys.cfg.Tree.Link(ctx, node.base().ino, d.ino, name)
	if err != nil {
		return nil, d.fsys.errno("link "+name, err)
	}
	return d.fsys.child(ctx, d.EmbeddedInode(), name, n, out), 0
}

func (d *dirNode) remove(ctx context.Context, name string, dir bool) syscall.Errno {
	if d.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	child := d.GetChild(name)
	left, err := d.fsys.cfg.Tree.Remove(ctx, d.ino, name, dir)
	if err != nil {
		return d.fsys.errno("remove "+name, err)
	}
	if left.Nlink == 0 {
		markUnlinked(child)
	} else if child != nil {
		rememberNode(child, left)
	}
	return 0
}

// rememberNode gives a node the record a change left its inode with.
func rememberNode(node *fs.Inode, n *metastore.Inode) {
	if t, ok := node.Operations().(interface{ remember(*metastore.Inode) }); ok {
		t.remember(n)
	}
}

func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	return d.remove(ctx, name, false)
}
func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	return d.remove(ctx, name, true)
}

// markUnlinked tells a node the kernel still knows that its name is gone.
func markUnlinked(child *fs.Inode) {
	if child == nil {
		return
	}
	if t, ok := child.Operations().(interface{ markUnlinked() }); ok {
		t.markUnlinked()
	}
}

// Rename moves a name, replacing the target as rename(2) does, in one
// transaction, also into another collection: the file's blob stays sealed
// with the key it was stored with (identical content is stored once, under
// the key of the collection that stored it first); what is written to it
// from then on is sealed with its new collection's key.
func (d *dirNode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if d.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	target, ok := newParent.(*dirNode)
	if !ok {
		return syscall.EPERM // into files/ itself: only collections live there
	}
	if flags&^uint32(unix.RENAME_NOREPLACE) != 0 { // RENAME_EXCHANGE, RENAME_WHITEOUT
		return syscall.EINVAL
	}
	if errno := checkName(newName); errno != 0 {
		return errno
	}
	replacedChild := target.GetChild(newName)
	replaced, err := d.fsys.cfg.Tree.Rename(ctx, d.ino, name, target.ino, newName, flags&unix.RENAME_NOREPLACE != 0)
	if err != nil {
		return d.fsys.errno("rename "+name, err)
	}
	switch {
	case replaced != nil && replaced.Nlink == 0:
		markUnlinked(replacedChild)
	case replaced != nil && replacedChild != nil:
		rememberNode(replacedChild, replaced)
	}
	return 0
}

// Fsync implements fs.NodeFsyncer: fsync(2) of a directory commits, so
// that the names made in it, and everything stored before, survive a
// power loss.
func (n *dirNode) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	return n.fsys.durable(ctx, true)
}
