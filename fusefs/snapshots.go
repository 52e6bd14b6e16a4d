package fusefs

import (
	"context"
	"slices"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/snapshot"
)

// Snapshots is what snapshots/ needs: the snapshots named on the mounted
// volume and a way to read their trees. Every method may be called from
// many goroutines at once. store.MountSnapshots implements it.
type Snapshots interface {
	// Collections returns the names of the collections that have
	// snapshots, sorted; none is an empty list and no error.
	Collections(ctx context.Context) ([]string, error)
	// Names returns the names of collection's snapshots
	// (snapshot.RecordName form), oldest first; a collection without
	// snapshots, or no such collection, has none: an empty list and no
	// error. It reads no record, so that a listing of thousands is quick.
	// The caller does not change the list.
	Names(ctx context.Context, collection string) ([]string, error)
	// Root returns the collection's folder as snapshot name holds it: a
	// directory entry whose Ref is its root tree. No such snapshot is an
	// error wrapping fs.ErrNotExist; a damaged record one wrapping
	// diskaccess.ErrCorrupt or snapshot.ErrCorrupt.
	Root(ctx context.Context, collection, name string) (snapshot.Entry, error)
	// LoadTree returns the plaintext of tree blob ref read through the
	// verified path (a snapshot.Loader): a blob the store does not hold is
	// an error wrapping fs.ErrNotExist, a damaged one diskaccess.ErrCorrupt.
	LoadTree(ctx context.Context, ref blobstore.Ref) ([]byte, error)
}

// snapshotsIno is snapshots/'s inode number.
const snapshotsIno = 4

// snapshotsTimeout is how long the kernel caches what snapshots/ and
// snapshots/<c>/ hold: new snapshots appear there while mounted (taken by
// the mount itself or through its daemon), so not for long. Their
// listings are never cached; the views inside are (snapshot_view.go).
const snapshotsTimeout = time.Second

// snapshotsRoot is snapshots/: one directory per collection that has
// snapshots on the volume.
type snapshotsRoot struct {
	fs.Inode
	readOnlyNode
	fsys *FS
}

var (
	_ fs.NodeLookuper  = (*snapshotsRoot)(nil)
	_ fs.NodeReaddirer = (*snapshotsRoot)(nil)
	_ fs.NodeGetattrer = (*snapshotsRoot)(nil)
)

func (r *snapshotsRoot) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	r.fsys.snapDirAttr(snapshotsIno, &out.Attr)
	out.SetTimeout(snapshotsTimeout)
	return 0
}

func (r *snapshotsRoot) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := checkName(name); errno != 0 {
		return nil, errno
	}
	collections, err := r.fsys.cfg.Snapshots.Collections(ctx)
	if err != nil {
		return nil, r.fsys.errno("lookup snapshots/"+name, err)
	}
	if _, found := slices.BinarySearch(collections, name); !found {
		return nil, syscall.ENOENT
	}
	ino := r.fsys.snapInos.collectionIno(name)
	child := r.NewInode(ctx, &snapshotsDir{fsys: r.fsys, collection: name}, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: ino})
	r.fsys.snapDirAttr(child.StableAttr().Ino, &out.Attr)
	out.SetEntryTimeout(snapshotsTimeout)
	out.SetAttrTimeout(snapshotsTimeout)
	return child, 0
}

func (r *snapshotsRoot) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	collections, err := r.fsys.cfg.Snapshots.Collections(ctx)
	if err != nil {
		return nil, r.fsys.errno("listing snapshots/", err)
	}
	entries := make([]fuse.DirEntry, len(collections))
	for i, name := range collections {
		entries[i] = fuse.DirEntry{Name: name, Ino: r.fsys.snapInos.collectionIno(name), Mode: syscall.S_IFDIR}
	}
	return fs.NewListDirStream(entries), 0
}
