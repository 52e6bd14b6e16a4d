package fusefs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/stofuse/stofuse/blobstore"
)

// statfs answers statfs(2) from every directory and file of the mount
// alike: the room on the volume written to, where the volume has a size of
// its own (a local directory: its filesystem). A bucket has none, so for
// an S3 volume it is the room in the spool directory, on the local disk
// where every file written into the mount waits before it is stored (what
// a write can use, and so what df should show).
func (f *FS) statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	space, err := f.space(ctx)
	if err != nil {
		return f.errno("statfs", err)
	}
	*out = fuse.StatfsOut{
		Blocks: space.Blocks, Bfree: space.BlocksFree, Bavail: space.BlocksAvail,
		Files: space.Files, Ffree: space.FilesFree,
		Bsize: uint32(space.BlockSize), Frsize: uint32(space.BlockSize),
		NameLen: maxNameLen,
	}
	return 0
}

func (f *FS) space(ctx context.Context) (blobstore.Space, error) {
	driver, err := f.cfg.Controller.Driver(f.cfg.Volume)
	if err != nil {
		return blobstore.Space{}, err
	}
	if reporter, ok := driver.(blobstore.SpaceReporter); ok {
		return reporter.Space(ctx)
	}
	return blobstore.SpaceOf(f.cfg.SpoolDir)
}

// Every node answers statfs: go-fuse answers all zeros for one that does
// not (and df then shows nothing, getconf NAME_MAX 0).
var (
	_ fs.NodeStatfser = (*Root)(nil)
	_ fs.NodeStatfser = (*refDir)(nil)
	_ fs.NodeStatfser = (*blobNode)(nil)
	_ fs.NodeStatfser = (*pendingNode)(nil)
	_ fs.NodeStatfser = (*filesRoot)(nil)
	_ fs.NodeStatfser = (*dirNode)(nil)
	_ fs.NodeStatfser = (*fileNode)(nil)
	_ fs.NodeStatfser = (*symlinkNode)(nil)
	_ fs.NodeStatfser = (*specialNode)(nil)
	_ fs.NodeStatfser = (*snapshotsRoot)(nil)
	_ fs.NodeStatfser = (*snapshotsDir)(nil)
	_ fs.NodeStatfser = (*snapDir)(nil)
	_ fs.NodeStatfser = (*snapFile)(nil)
	_ fs.NodeStatfser = (*snapSymlink)(nil)
	_ fs.NodeStatfser = (*snapSpecial)(nil)
)

func (r *Root) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return r.fsys.statfs(ctx, out)
}

func (d *refDir) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return d.fsys.statfs(ctx, out)
}

func (n *blobNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return n.fsys.statfs(ctx, out)
}

func (p *pendingNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return p.dir.fsys.statfs(ctx, out)
}

func (r *filesRoot) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return r.fsys.statfs(ctx, out)
}

func (t *treeNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return t.fsys.statfs(ctx, out)
}

func (r *snapshotsRoot) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return r.fsys.statfs(ctx, out)
}

func (d *snapshotsDir) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return d.fsys.statfs(ctx, out)
}

func (n *snapNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return n.view.fsys.statfs(ctx, out)
}
