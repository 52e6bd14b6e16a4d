package fusefs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/stofuse/stofuse/metastore/snapshot"
)

// snapshotsDir is snapshots/<collection>/: one directory per snapshot of
// the collection, named as its record (2026-12-01T09-30-05.123456789Z),
// oldest first. The listing reads names only; a snapshot's record is read
// when its name is looked up.
type snapshotsDir struct {
	fs.Inode
	readOnlyNode
	fsys       *FS
	collection string
}

var (
	_ fs.NodeLookuper  = (*snapshotsDir)(nil)
	_ fs.NodeReaddirer = (*snapshotsDir)(nil)
	_ fs.NodeGetattrer = (*snapshotsDir)(nil)
)

func (d *snapshotsDir) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fsys.snapDirAttr(d.StableAttr().Ino, &out.Attr)
	out.SetTimeout(snapshotsTimeout)
	return 0
}

// Lookup opens a snapshot's view; its root is the collection's folder as
// the snapshot holds it.
func (d *snapshotsDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := checkName(name); errno != 0 {
		return nil, errno
	}
	if _, err := snapshot.ParseRecordName(name); err != nil {
		return nil, syscall.ENOENT // not a snapshot's name: no need to ask
	}
	root, err := d.fsys.cfg.Snapshots.Root(ctx, d.collection, name)
	if err != nil {
		return nil, d.fsys.errno("lookup snapshots/"+d.collection+"/"+name, err)
	}
	d.fsys.holds.browse(root.Ref)
	view := &snapView{fsys: d.fsys, collection: d.collection, name: name, id: d.fsys.snapInos.view(d.collection, name)}
	child := view.newNode(ctx, d.EmbeddedInode(), root, viewRootIno(view.id))
	child.Operations().(interface{ attr(*fuse.Attr) }).attr(&out.Attr)
	// The name may go (when snapshots are forgotten); what it shows never
	// changes.
	out.SetEntryTimeout(snapshotsTimeout)
	out.SetAttrTimeout(blobTimeout)
	return child, 0
}

// Readdir lists the snapshots' names, with the inode numbers their views
// have.
func (d *snapshotsDir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	names, err := d.fsys.cfg.Snapshots.Names(ctx, d.collection)
	if err != nil {
		return nil, d.fsys.errno("listing snapshots/"+d.collection, err)
	}
	views := d.fsys.snapInos.viewsOf(d.collection, names)
	entries := make([]fuse.DirEntry, len(names))
	for i, name := range names {
		entries[i] = fuse.DirEntry{Name: name, Ino: viewRootIno(views[i]), Mode: syscall.S_IFDIR}
	}
	return fs.NewListDirStream(entries), 0
}
