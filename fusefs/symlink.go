package fusefs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// symlinkNode is a symbolic link of the tree.
type symlinkNode struct {
	treeNode
}

var (
	_ fs.NodeReadlinker = (*symlinkNode)(nil)
	_ fs.NodeGetattrer  = (*symlinkNode)(nil)
	_ fs.NodeSetattrer  = (*symlinkNode)(nil)
)

func (l *symlinkNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	n, _, err := l.record(ctx)
	if err != nil {
		return nil, l.fsys.errno("readlink", err)
	}
	return []byte(n.Target), 0
}

func (l *symlinkNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return l.getattr(ctx, out)
}

func (l *symlinkNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return l.setattr(ctx, in, out)
}

// specialNode is a FIFO, socket or device of the tree: an inode with a
// type (and a device number), and no content. The kernel itself serves
// opening one (a pipe, the socket bound to it, the device), so that
// nothing but attributes ever reaches the daemon.
type specialNode struct {
	treeNode
}

var (
	_ fs.NodeGetattrer = (*specialNode)(nil)
	_ fs.NodeSetattrer = (*specialNode)(nil)
)

func (n *specialNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return n.getattr(ctx, out)
}

func (n *specialNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return n.setattr(ctx, in, out)
}
