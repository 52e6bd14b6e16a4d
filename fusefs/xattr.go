package fusefs

import (
	"context"
	"strings"
	"syscall"

	"github.com/stofuse/stofuse/metastore"
)

// Extended attributes of the tree: user.* attributes are kept with the
// inode (the Tree's), shared by its hard links, in snapshots and through a
// recover. The user.stofuse.* names of a file are its blob's, computed
// from the content (fileNode): setting or removing one is accepted and
// changes nothing, so that cp -a and rsync -X between two places in the
// mount work. Other namespaces (security.*, system.* ACLs, trusted.*) are
// not kept: setxattr answers ENOTSUP, which tells cp -a and tar that ACLs
// are not kept here (they keep the mode bits), and getxattr answers as
// noXattr says.

// Getxattr implements fs.NodeGetxattrer.
func (t *treeNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if !strings.HasPrefix(attr, "user.") {
		return 0, noXattr(attr)
	}
	xattrs, errno := t.xattrs(ctx)
	if errno != 0 {
		return 0, errno
	}
	for _, x := range xattrs {
		if x.Name == attr {
			return copyXattr(dest, string(x.Value))
		}
	}
	return 0, syscall.ENODATA
}

// Listxattr implements fs.NodeListxattrer.
func (t *treeNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	names, errno := t.xattrNames(ctx)
	if errno != 0 {
		return 0, errno
	}
	return copyXattrList(dest, names)
}

// Setxattr implements fs.NodeSetxattrer.
func (t *treeNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if t.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	switch {
	case strings.HasPrefix(attr, xattrPrefix):
		return 0 // the blob's, computed: see above
	case !strings.HasPrefix(attr, "user."):
		return syscall.ENOTSUP
	}
	n, err := t.fsys.cfg.Tree.SetXattr(ctx, t.ino, attr, data, flags)
	if err != nil {
		return t.fsys.errno("setxattr "+attr, err)
	}
	t.remember(n)
	return 0
}

// Removexattr implements fs.NodeRemovexattrer.
func (t *treeNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if t.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	switch {
	case strings.HasPrefix(attr, xattrPrefix):
		return 0
	case !strings.HasPrefix(attr, "user."):
		return syscall.ENOTSUP
	}
	n, err := t.fsys.cfg.Tree.RemoveXattr(ctx, t.ino, attr)
	if err != nil {
		return t.fsys.errno("removexattr "+attr, err)
	}
	t.remember(n)
	return 0
}

// xattrs reads the inode's attributes; one that has none (as its last
// known record says) costs no read.
func (t *treeNode) xattrs(ctx context.Context) ([]metastore.Xattr, syscall.Errno) {
	t.mu.Lock()
	has := t.last.HasXattrs
	t.mu.Unlock()
	if !has {
		return nil, 0
	}
	xattrs, err := t.fsys.cfg.Tree.Xattrs(ctx, t.ino)
	if err != nil {
		return nil, t.fsys.errno("getxattr", err)
	}
	return xattrs, 0
}

func (t *treeNode) xattrNames(ctx context.Context) ([]string, syscall.Errno) {
	xattrs, errno := t.xattrs(ctx)
	names := make([]string, 0, len(xattrs))
	for _, x := range xattrs {
		names = append(names, x.Name)
	}
	return names, errno
}

// copyXattrList follows listxattr(2): the names, each ended by a NUL.
func copyXattrList(dest []byte, names []string) (uint32, syscall.Errno) {
	var list strings.Builder
	for _, name := range names {
		list.WriteString(name)
		list.WriteByte(0)
	}
	return copyXattr(dest, list.String())
}

// Getxattr implements fs.NodeGetxattrer: a snapshot shows the attributes
// its entries recorded.
func (n *snapNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if !strings.HasPrefix(attr, "user.") {
		return 0, noXattr(attr)
	}
	for _, x := range n.entry.Xattrs {
		if x.Name == attr {
			return copyXattr(dest, string(x.Value))
		}
	}
	return 0, syscall.ENODATA
}

// Listxattr implements fs.NodeListxattrer.
func (n *snapNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	names := make([]string, 0, len(n.entry.Xattrs))
	for _, x := range n.entry.Xattrs {
		names = append(names, x.Name)
	}
	return copyXattrList(dest, names)
}
