package fusefs

import (
	"context"
	"errors"
	"slices"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// refDir is ref/: one file per blob on the volume, listed from the
// metadata store, plus the files being written through the mount.
//
// Writing rules:
//   - A file created under a hex name is streamed into the store as it
//     is written (from its start; nothing is spooled) and committed when
//     it is closed (Flush), if its content hashes to the name; otherwise
//     close fails with EIO and nothing is stored. A blob that exists
//     already is not stored again. A close before anything is written
//     fails but does not end the file (a shell's `cat f > ref/<hex>` and
//     dd close a duplicate descriptor before writing); if the file is
//     closed for good with nothing written (touch), nothing is stored and
//     the name goes.
//   - A file created under any other name is spooled, and stored under
//     its content's hash when it is closed; the blob then shows under its
//     hex name, and the written name stays visible (as the same content)
//     until it is renamed, removed, or the volume is unmounted. Renaming
//     it to a hex name (as rsync does) checks the content: the wrong name
//     is EIO.
//   - Committed blobs cannot be removed, renamed or changed (EPERM).
//     Opening one for writing starts a rewrite that must reproduce its
//     content exactly: writing the same content again (cp onto it)
//     succeeds and stores nothing; anything else fails with EPERM at
//     close, and O_APPEND at open. Their modification time can be set
//     (touch, rsync -t); chmod and chown are accepted and change nothing.
type refDir struct {
	fs.Inode
	fsys *FS

	mu      sync.Mutex              // guards pending
	pending map[string]*pendingNode // files written under this name, by name
}

var (
	_ fs.NodeLookuper       = (*refDir)(nil)
	_ fs.NodeOpendirHandler = (*refDir)(nil)
	_ fs.NodeGetattrer      = (*refDir)(nil)
	_ fs.NodeSetattrer      = (*refDir)(nil)
	_ fs.NodeCreater        = (*refDir)(nil)
	_ fs.NodeUnlinker       = (*refDir)(nil)
	_ fs.NodeRenamer        = (*refDir)(nil)
	_ fs.NodeFsyncer        = (*refDir)(nil)
)

func newRefDir(f *FS) *refDir {
	return &refDir{fsys: f, pending: make(map[string]*pendingNode)}
}

// Getattr implements fs.NodeGetattrer. Blobs have no owner of their own,
// so ref/ is the mount owner's alone (mode 0700): with --allow-other, the
// kernel keeps other users out of it, and so away from blobs that files/
// or a snapshot protects.
func (d *refDir) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fsys.dirAttr(refIno, &out.Attr)
	out.Mode &^= 0o077
	out.SetTimeout(blobTimeout)
	return 0
}

// Setattr implements fs.NodeSetattrer. ref/ has no attributes to keep:
// times and mode set on it (rsync -a does) are accepted and change nothing.
func (d *refDir) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if d.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	return d.Getattr(ctx, fh, out)
}

func (d *refDir) pendingNamed(name string) *pendingNode {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pending[name]
}

// Lookup implements fs.NodeLookuper.
func (d *refDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := checkName(name); errno != 0 {
		return nil, errno
	}
	if p := d.pendingNamed(name); p != nil {
		p.fillAttr(ctx, &out.Attr)
		out.SetEntryTimeout(pendingTimeout)
		out.SetAttrTimeout(pendingTimeout)
		return p.EmbeddedInode(), 0
	}
	ref, err := blobstore.ParseRef(name)
	if err != nil {
		return nil, syscall.ENOENT
	}
	node, errno := d.lookupBlob(ctx, name, ref, &out.Attr)
	if errno != 0 {
		return nil, errno
	}
	setBlobTimeouts(out)
	return node, 0
}

// lookupBlob returns the inode of a committed blob, named name, that the
// mount shows.
func (d *refDir) lookupBlob(ctx context.Context, name string, ref blobstore.Ref, attr *fuse.Attr) (*fs.Inode, syscall.Errno) {
	meta, mtime, err := d.fsys.cfg.Catalog.BlobRecord(ctx, ref)
	if err != nil {
		return nil, d.fsys.errno(describe("lookup", ref.String()), err)
	}
	return d.shownBlob(ctx, name, ref, meta, mtime, attr)
}

// shownBlob returns the inode of blob ref, named name, whose record is
// meta and mtime, with its attributes; ENOENT if the mount does not show
// it (no copy on a mounted volume).
func (d *refDir) shownBlob(ctx context.Context, name string, ref blobstore.Ref, meta *diskaccess.BlobMeta, mtime int64, attr *fuse.Attr) (*fs.Inode, syscall.Errno) {
	if !d.fsys.shows(meta.Volumes) {
		return nil, syscall.ENOENT
	}
	d.fsys.blobAttr(meta, mtime, attr)
	return d.blobInode(ctx, name, ref), 0
}

// blobInode makes (or finds) the kernel inode of blob ref, named name.
func (d *refDir) blobInode(ctx context.Context, name string, ref blobstore.Ref) *fs.Inode {
	if child := d.GetChild(name); child != nil {
		if _, ok := child.Operations().(*blobNode); ok {
			return child
		}
	}
	return d.NewInode(ctx, &blobNode{fsys: d.fsys, ref: ref}, fs.StableAttr{Mode: syscall.S_IFREG, Ino: inoOf(ref)})
}

func setBlobTimeouts(out *fuse.EntryOut) {
	out.SetEntryTimeout(blobTimeout)
	out.SetAttrTimeout(blobTimeout)
}

// OpendirHandle implements fs.NodeOpendirHandler: the files being
// written, then the blobs, streamed from the metadata store a page at a
// time (see listing).
func (d *refDir) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	d.mu.Lock()
	names := make([]string, 0, len(d.pending))
	for name := range d.pending {
		names = append(names, name)
	}
	d.mu.Unlock()
	slices.Sort(names)
	return newListing(d.fsys, "listing ref/", names, d.fsys.refPages, d.EmbeddedInode(), d.Lookup, d.lookupMany), 0, 0
}

// lookupMany is the listing's batchLookuper: the entries' records in one
// transaction (Catalog.BlobRecords), each then as Lookup makes it.
func (d *refDir) lookupMany(ctx context.Context, entries []fuse.DirEntry) (lookedUp, error) {
	found := refLookups{dir: d, entries: entries, refs: make([]blobstore.Ref, len(entries)), records: make([]refRecord, len(entries))}
	for i := range entries {
		ref, err := blobstore.ParseRef(entries[i].Name)
		if err != nil {
			return nil, err
		}
		found.refs[i] = ref
	}
	err := d.fsys.cfg.Catalog.BlobRecords(ctx, found.refs, func(i int, meta *diskaccess.BlobMeta, mtime int64) {
		found.records[i] = refRecord{meta, mtime}
	})
	return found, err
}

// refLookups are the records that refDir.lookupMany found.
type refLookups struct {
	dir     *refDir
	entries []fuse.DirEntry
	refs    []blobstore.Ref
	records []refRecord
}

type refRecord struct {
	meta  *diskaccess.BlobMeta // nil: not found
	mtime int64
}

func (r refLookups) lookup(ctx context.Context, k int, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	d, name, rec := r.dir, r.entries[k].Name, r.records[k]
	if d.pendingNamed(name) != nil {
		return d.Lookup(ctx, name, out) // being written since the listing began
	}
	if rec.meta == nil {
		return nil, syscall.ENOENT
	}
	node, errno := d.shownBlob(ctx, name, r.refs[k], rec.meta, rec.mtime, &out.Attr)
	if errno == 0 {
		setBlobTimeouts(out)
	}
	return node, errno
}

// Create implements fs.NodeCreater.
func (d *refDir) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if d.fsys.cfg.ReadOnly {
		return nil, nil, 0, syscall.EROFS
	}
	if errno := checkName(name); errno != 0 {
		return nil, nil, 0, errno
	}
	if ref, err := blobstore.ParseRef(name); err == nil && d.isCommitted(ctx, ref) {
		return nil, nil, 0, syscall.EEXIST // the kernel looks up first: only O_EXCL gets here
	}
	p := d.addPending(newPendingNode(d, name, mode))
	inode := d.NewInode(ctx, p, fs.StableAttr{Mode: syscall.S_IFREG})
	p.fillAttr(ctx, &out.Attr)
	out.SetEntryTimeout(pendingTimeout)
	out.SetAttrTimeout(pendingTimeout)
	return inode, p.newHandle(true), fuse.FOPEN_DIRECT_IO, 0
}

// addPending makes p the file written under its name, discarding the one
// written there before, and returns it.
func (d *refDir) addPending(p *pendingNode) *pendingNode {
	d.mu.Lock()
	old := d.pending[p.name]
	d.pending[p.name] = p
	d.mu.Unlock()
	if old != nil {
		old.discard()
	}
	return p
}

func (d *refDir) isCommitted(ctx context.Context, ref blobstore.Ref) bool {
	meta, _, err := d.fsys.cfg.Catalog.BlobRecord(ctx, ref)
	return err == nil && d.fsys.shows(meta.Volumes)
}

// shows reports whether ref/ shows a blob with copies on volumes: one on
// the mounted volume, or (not OnlyVolume) on any mounted volume.
func (f *FS) shows(volumes []int) bool {
	if f.cfg.OnlyVolume {
		return slices.Contains(volumes, f.cfg.Volume)
	}
	return slices.ContainsFunc(volumes, f.cfg.Controller.IsMounted)
}

// visibleFilter is the test of shows for a listing of ref/ to apply to
// each blob's record, or nil while every volume of the store is mounted
// (every blob shows: the listing reads the records' keys alone).
func (f *FS) visibleFilter(ctx context.Context) func(int) bool {
	ids, err := f.cfg.Catalog.VolumeIDs(ctx)
	if err == nil && !slices.ContainsFunc(ids, func(id int) bool { return !f.cfg.Controller.IsMounted(id) }) {
		return nil
	}
	return f.cfg.Controller.IsMounted
}

// Unlink implements fs.NodeUnlinker: a written name can be removed (its
// blob, if stored, stays); a committed blob cannot.
func (d *refDir) Unlink(ctx context.Context, name string) syscall.Errno {
	if d.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	d.mu.Lock()
	p := d.pending[name]
	delete(d.pending, name)
	d.mu.Unlock()
	if p != nil {
		p.discard()
		return 0
	}
	if ref, err := blobstore.ParseRef(name); err == nil && d.isCommitted(ctx, ref) {
		d.fsys.logf("unlink ref/%s: blobs are never removed through the mount (EPERM)", name)
		return syscall.EPERM
	}
	return syscall.ENOENT
}

// Rename implements fs.NodeRenamer. Only a written file can be renamed,
// within ref/. To a hex name, it is where its content is checked.
func (d *refDir) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if d.fsys.cfg.ReadOnly {
		return syscall.EROFS
	}
	if newParent.EmbeddedInode() != d.EmbeddedInode() {
		return syscall.EXDEV
	}
	if flags != 0 { // RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT
		return syscall.EINVAL
	}
	if errno := checkName(newName); errno != 0 {
		return errno
	}
	p := d.pendingNamed(name)
	if p == nil {
		if ref, err := blobstore.ParseRef(name); err == nil && d.isCommitted(ctx, ref) {
			return syscall.EPERM
		}
		return syscall.ENOENT
	}
	if _, err := p.commit(d.fsys.storing(ctx), atClose); err != nil {
		return d.fsys.errno(describe("rename", name), err)
	}
	if newRef, err := blobstore.ParseRef(newName); err == nil {
		if got, _ := p.committedRef(); got != newRef {
			d.fsys.logf("rename ref/%s to ref/%s: its content is blob %s (EIO)", name, newName, got)
			return syscall.EIO
		}
		d.dropPending(name, p)
		d.forget(newName)
		return 0
	}
	d.mu.Lock()
	delete(d.pending, name)
	old := d.pending[newName]
	d.pending[newName] = p
	d.mu.Unlock()
	p.mu.Lock()
	p.name = newName
	p.mu.Unlock()
	if old != nil {
		old.discard()
	}
	return 0
}

// dropPending removes a written name once its blob is committed under its
// hex name; the blob is then listed from the metadata store.
func (d *refDir) dropPending(name string, p *pendingNode) {
	d.mu.Lock()
	if d.pending[name] == p {
		delete(d.pending, name)
	}
	d.mu.Unlock()
}

// leave drops the written name and the kernel's entry for it: the file
// was stored under its hex name (which the metadata store lists now), or
// not stored at all.
func (d *refDir) leave(name string, p *pendingNode) {
	d.dropPending(name, p)
	d.forget(name)
}

// forget asks the kernel to drop its entry for name, so that the next
// lookup finds the committed blob. It runs in its own goroutine: the kernel
// may hold the directory lock while it waits for the current request.
func (d *refDir) forget(name string) {
	go func() {
		if errno := d.NotifyEntry(name); errno != 0 && !errors.Is(errno, syscall.ENOENT) {
			d.fsys.logf("invalidating ref/%s: %v", name, errno)
		}
	}()
}

// Fsync implements fs.NodeFsyncer: as for a directory of files/.
func (d *refDir) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	return d.fsys.durable(ctx, true)
}
