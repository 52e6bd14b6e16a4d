package fusefs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/stofuse/stofuse/metastore"
	"github.com/stofuse/stofuse/metastore/snapshot"
)

// snapView is one snapshot of one collection, shown at
// snapshots/<collection>/<name>/: the collection's files/ tree as the
// snapshot holds it. Everything in it is immutable, so the kernel caches
// its entries, attributes, listings and pages for long.
type snapView struct {
	fsys       *FS
	collection string
	name       string
	id         uint64 // its number in the inode scheme (snapshot_ino.go)
}

func (v *snapView) describe(op string, e *snapshot.Entry) string {
	return op + " " + e.Name + " in snapshot " + v.collection + "/" + v.name
}

// snapNode is what every node of a view has: the entry it is.
type snapNode struct {
	fs.Inode
	readOnlyNode
	view  *snapView
	entry snapshot.Entry
}

// snapDir is a directory of a view (its root is the collection's folder).
type snapDir struct{ snapNode }

// snapFile is a file of a view: its content is the blob entry.Ref.
type snapFile struct{ snapNode }

// snapSymlink is a symbolic link of a view.
type snapSymlink struct{ snapNode }

// snapSpecial is a FIFO, socket or device of a view: attributes only (the
// kernel serves opening one).
type snapSpecial struct{ snapNode }

var (
	_ fs.NodeGetattrer      = (*snapNode)(nil)
	_ fs.NodeLookuper       = (*snapDir)(nil)
	_ fs.NodeOpendirHandler = (*snapDir)(nil)
	_ fs.NodeOpener         = (*snapFile)(nil)
	_ fs.NodeReadlinker     = (*snapSymlink)(nil)
	_ fs.NodeGetxattrer     = (*snapNode)(nil)
	_ fs.NodeListxattrer    = (*snapNode)(nil)
	_ fs.NodeRemovexattrer  = (*snapNode)(nil)
	_ fs.NodeSetattrer      = (*snapFile)(nil)
	_ fs.NodeCreater        = (*snapDir)(nil)
	_ fs.NodeRenamer        = (*snapDir)(nil)
	_ fs.InodeEmbedder      = (*snapSymlink)(nil)
	_ fs.InodeEmbedder      = (*snapSpecial)(nil)
)

// newNode returns the kernel inode, numbered ino, of entry e of view v
// under parent.
func (v *snapView) newNode(ctx context.Context, parent *fs.Inode, e snapshot.Entry, ino uint64) *fs.Inode {
	var node interface {
		fs.InodeEmbedder
		base() *snapNode
	}
	switch e.Kind {
	case snapshot.KindDir:
		node = &snapDir{}
	case snapshot.KindSymlink:
		node = &snapSymlink{}
	case snapshot.KindFile:
		node = &snapFile{}
	default:
		node = &snapSpecial{}
	}
	node.base().view, node.base().entry = v, e
	return parent.NewInode(ctx, node, fs.StableAttr{Mode: typeBits(metastore.Kind(e.Kind)), Ino: ino})
}

func (n *snapNode) base() *snapNode { return n }

// attr fills the attributes the snapshot holds. The inode number is the
// node's own (it may be an automatic one).
func (n *snapNode) attr(out *fuse.Attr) {
	e := &n.entry
	out.Ino = n.StableAttr().Ino
	out.Mode = typeBits(metastore.Kind(e.Kind)) | e.Mode&0o7777
	out.Nlink = max(e.Nlink, 1) // directories 1, as files/: find must not count subdirectories by it
	out.Size = uint64(e.Size)
	switch e.Kind {
	case snapshot.KindFile:
		out.Blocks = uint64(e.StoredSize+511) / 512
	case snapshot.KindSymlink:
		out.Size = uint64(len(e.Target))
	}
	out.Blksize = 1 << 17
	out.Rdev = e.Rdev
	out.Owner = fuse.Owner{Uid: e.UID, Gid: e.GID}
	out.SetTimes(&e.Mtime, &e.Mtime, &e.Ctime)
}

func (n *snapNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.attr(&out.Attr)
	out.SetTimeout(blobTimeout)
	return 0
}

func (d *snapDir) reader() *snapshot.Reader {
	return snapshot.NewReader(d.view.fsys.trees.load, d.entry.Ref)
}

// Lookup loads one tree blob per level of the directory's tree.
func (d *snapDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := checkName(name); errno != 0 {
		return nil, errno
	}
	e, err := d.reader().Lookup(ctx, name)
	if err != nil {
		return nil, d.view.fsys.errno(d.view.describe("lookup "+name+" under", &d.entry), err)
	}
	child := d.view.newNode(ctx, d.EmbeddedInode(), e, snapIno(d.view.id, e.Ino))
	child.Operations().(interface{ attr(*fuse.Attr) }).attr(&out.Attr)
	setBlobTimeouts(out)
	return child, 0
}

// OpendirHandle lists the directory from its tree, and lets the kernel
// keep the listing: it never changes.
func (d *snapDir) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return &snapDirHandle{dir: d}, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

// Open reads through the same verified path as files/ and ref/.
func (f *snapFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	if f.entry.Ref.IsZero() { // a file that never had content
		return emptyHandle{}, fuse.FOPEN_KEEP_CACHE, 0
	}
	fsys := f.view.fsys
	blob, err := fsys.cfg.Controller.OpenBlobAnyCopy(ctx, f.entry.Ref, fsys.cfg.Keys, fsys.cfg.Volume)
	if err != nil {
		return nil, 0, fsys.errno(f.view.describe("open", &f.entry)+" (blob "+f.entry.Ref.String()+")", err)
	}
	return fsys.newReadHandle(blob), fuse.FOPEN_KEEP_CACHE, 0
}

// emptyHandle reads a file without content. (Not a NodeReader on
// snapFile: go-fuse would call that before any handle's Read.)
type emptyHandle struct{}

var _ fs.FileReader = emptyHandle{}

func (emptyHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return fuse.ReadResultData(nil), 0
}

func (l *snapSymlink) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	return []byte(l.entry.Target), 0
}
