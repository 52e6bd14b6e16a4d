package fusefs

import (
	"context"
	"slices"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/stofuse/stofuse/metastore"
)

// filesRoot is files/: one folder per collection. mkdir makes a
// collection (with its own data key); rmdir of an empty folder removes the
// folder (the collection and its key stay, and come back with mkdir).
// Only folders live here: files and symlinks go inside a collection.
type filesRoot struct {
	fs.Inode
	fsys *FS
}

var (
	_ fs.NodeLookuper  = (*filesRoot)(nil)
	_ fs.NodeReaddirer = (*filesRoot)(nil)
	_ fs.NodeGetattrer = (*filesRoot)(nil)
	_ fs.NodeSetattrer = (*filesRoot)(nil)
	_ fs.NodeMkdirer   = (*filesRoot)(nil)
	_ fs.NodeRmdirer   = (*filesRoot)(nil)
	_ fs.NodeCreater   = (*filesRoot)(nil)
	_ fs.NodeRenamer   = (*filesRoot)(nil)
	_ fs.NodeFsyncer   = (*filesRoot)(nil)
)

func (r *filesRoot) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	r.fsys.dirAttr(filesIno, &out.Attr)
	out.SetTimeout(treeTimeout)
	return 0
}

// Setattr accepts what rsync -a and tar set on the top directory, and
// keeps nothing: files/ has no attributes of its own.
func (r *filesRoot) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if r.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	return r.Getattr(ctx, fh, out)
}

func (r *filesRoot) folder(ctx context.Context, name string) (*metastore.Inode, error) {
	folders, err := r.fsys.cfg.Tree.CollectionFolders(ctx)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(folders, func(e metastore.Entry) bool { return e.Name == name })
	if i < 0 {
		return nil, syscall.ENOENT
	}
	return r.fsys.cfg.Tree.Inode(ctx, folders[i].Ino)
}

func (r *filesRoot) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := checkName(name); errno != 0 {
		return nil, errno
	}
	n, err := r.folder(ctx, name)
	if err != nil {
		return nil, r.fsys.errno("lookup files/"+name, err)
	}
	return r.fsys.child(ctx, r.EmbeddedInode(), name, n, out), 0
}

func (r *filesRoot) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	folders, err := r.fsys.cfg.Tree.CollectionFolders(ctx)
	if err != nil {
		return nil, r.fsys.errno("listing files/", err)
	}
	entries := make([]fuse.DirEntry, len(folders))
	for i, folder := range folders {
		entries[i] = fuse.DirEntry{Name: folder.Name, Ino: folder.Ino, Mode: syscall.S_IFDIR}
	}
	return fs.NewListDirStream(entries), 0
}

// Mkdir makes a collection, or gives a collection whose folder was removed
// a folder again.
func (r *filesRoot) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if r.fsys.cfg.ReadOnly {
		return nil, syscall.EROFS
	}
	if errno := checkName(name); errno != 0 {
		return nil, errno
	}
	uid, gid := caller(ctx)
	n, err := r.fsys.cfg.Tree.CreateCollectionFolder(ctx, name, mode, uid, gid)
	if err != nil {
		return nil, r.fsys.errno("mkdir files/"+name, err)
	}
	return r.fsys.child(ctx, r.EmbeddedInode(), name, n, out), 0
}

func (r *filesRoot) Rmdir(ctx context.Context, name string) syscall.Errno {
	if r.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	return r.fsys.errno("rmdir files/"+name, r.fsys.cfg.Tree.RemoveCollectionFolder(ctx, name))
}

// Create refuses files directly in files/: every file belongs to a
// collection, whose key seals it.
func (r *filesRoot) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if r.fsys.cfg.ReadOnly {
		return nil, nil, 0, syscall.EROFS
	}
	r.fsys.logf("create files/%s: only collection folders live in files/ (mkdir one) (EPERM)", name)
	return nil, nil, 0, syscall.EPERM
}

// Rename refuses renaming collections.
func (r *filesRoot) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if r.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	r.fsys.logf("rename files/%s: collections are not renamed (EPERM)", name)
	return syscall.EPERM
}

// Fsync implements fs.NodeFsyncer: as for a directory of files/.
func (r *filesRoot) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	return r.fsys.durable(ctx, true)
}
