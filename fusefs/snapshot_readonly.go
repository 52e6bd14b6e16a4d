package fusefs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// readOnlyNode answers every change under snapshots/ with EROFS, also on
// a read-write mount: a snapshot is history. Embedded in each of its
// nodes, because go-fuse answers an operation a node does not implement
// with ENOTSUP (mkdir, rename, symlink, setattr...), which cp, rsync and
// editors report as "Operation not supported" rather than "Read-only file
// system".
type readOnlyNode struct{}

var (
	_ fs.NodeSetattrer     = readOnlyNode{}
	_ fs.NodeCreater       = readOnlyNode{}
	_ fs.NodeMkdirer       = readOnlyNode{}
	_ fs.NodeMknoder       = readOnlyNode{}
	_ fs.NodeSymlinker     = readOnlyNode{}
	_ fs.NodeLinker        = readOnlyNode{}
	_ fs.NodeUnlinker      = readOnlyNode{}
	_ fs.NodeRmdirer       = readOnlyNode{}
	_ fs.NodeRenamer       = readOnlyNode{}
	_ fs.NodeSetxattrer    = readOnlyNode{}
	_ fs.NodeRemovexattrer = readOnlyNode{}
)

func (readOnlyNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

func (readOnlyNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}

func (readOnlyNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnlyNode) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnlyNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnlyNode) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnlyNode) Unlink(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }

func (readOnlyNode) Rmdir(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }

func (readOnlyNode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return syscall.EROFS
}

func (readOnlyNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return syscall.EROFS
}

func (readOnlyNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return syscall.EROFS
}

// Getxattr and Listxattr: the directories of snapshots/ itself have no
// extended attributes, and say so at once (noXattr); a view's entries show
// theirs (snapNode).
func (readOnlyNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return 0, noXattr(attr)
}

func (readOnlyNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return 0, 0
}

// snapDirAttr fills the attributes of a directory of snapshots/ itself
// (not of a view): read-only whatever the mount.
func (f *FS) snapDirAttr(ino uint64, out *fuse.Attr) {
	f.dirAttr(ino, out)
	out.Mode = syscall.S_IFDIR | 0o555
}
