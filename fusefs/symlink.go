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
