// Package fusefs presents a stofuse volume as a FUSE filesystem (go-fuse's
// fs API):
//
//	MOUNTPOINT/ref/<64 hex>            one file per blob on the mounted volume
//	MOUNTPOINT/files/<collection>/...  a directory tree whose files are blobs
//	MOUNTPOINT/snapshots/<collection>/<snapshot>/...  that tree as a snapshot holds it
//
// Reads go through diskaccess's verified, random-access path with the keys
// loaded at mount time: a damaged blob reads as EIO, never as wrong bytes.
// Blobs are immutable, so the kernel may cache ref/'s entries, attributes
// and pages for long. Unless the mount is read-only, a file written into
// ref/ under its hex name is streamed into the store as it is written and
// committed at close if it hashes to the name; under another name it is
// spooled and stored under its hash at close (refdir.go has the rules).
// files/ is served from the Tree the mount is given (the metadata store):
// a file's content is spooled while written and stored as a blob at close
// or fsync (file.go, tree.go). snapshots/ is read-only history, served
// from the snapshot trees that Snapshots names (snapshots.go). fusefs
// imports no driver, no Badger and no store: it defines the interfaces it
// needs (Catalog, Tree, Snapshots, Observer).
package fusefs

import (
	"context"
	"encoding/binary"
	"fmt"
	"log"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore"
)

// Catalog is what the mount needs from the metadata store beyond
// diskaccess.MetadataStore. metastore/badger implements it.
type Catalog interface {
	// BlobRecord returns a blob's metadata and the modification time set
	// through the mount (Unix nanoseconds, 0 if never set), or an
	// fs.ErrNotExist error.
	BlobRecord(ctx context.Context, ref blobstore.Ref) (*diskaccess.BlobMeta, int64, error)
	// SetBlobMtime records a blob's modification time; it may be called
	// any number of times.
	SetBlobMtime(ctx context.Context, ref blobstore.Ref, unixNano int64) error
	// ListVolumeBlobs calls fn for each blob on the volume in ref order,
	// starting after the given ref (zero: from the start).
	ListVolumeBlobs(ctx context.Context, volumeID int, after blobstore.Ref, fn func(blobstore.Ref) error) error
	// ListBlobs is ListVolumeBlobs of every blob of the store, once; with
	// visible, only those with a copy on a volume it accepts. An error
	// from fn ends it and is returned as it is.
	ListBlobs(ctx context.Context, after blobstore.Ref, visible func(volumeID int) bool, fn func(blobstore.Ref) error) error
	// BlobRecords is BlobRecord of many refs (ascending) at once: fn is
	// called with the index of each that has a record.
	BlobRecords(ctx context.Context, refs []blobstore.Ref, fn func(i int, meta *diskaccess.BlobMeta, mtime int64)) error
	// VolumeIDs lists the ids of the store's volumes, mounted or not.
	VolumeIDs(ctx context.Context) ([]int, error)
	// VolumeName returns a volume's name, for xattrs.
	VolumeName(ctx context.Context, volumeID int) string
}

// Config says what to mount and how.
type Config struct {
	Controller *diskaccess.Controller
	Catalog    Catalog
	Keys       diskaccess.KeyRing
	Tree       Tree      // the files/ tree; nil: no files/
	Snapshots  Snapshots // the snapshots on Volume; nil: no snapshots/
	// Volume is the write volume: blobs written through the mount are
	// stored on it, reads try its copy first, and statfs reports it.
	Volume int
	// OnlyVolume: ref/ shows Volume's blobs only; else the blobs of every
	// mounted volume, each once.
	OnlyVolume bool
	Collection string // whose key seals blobs written through the mount
	ReadOnly   bool
	// AllowOther lets every user reach the mount (FUSE's allow_other);
	// without it only the mount's owner can. Either way the kernel
	// checks every access against the owners and modes the mount shows
	// (default_permissions).
	AllowOther bool
	SpoolDir   string // where files being written are spooled
	// SpaceCheck, if set, is asked before each write into the spool: its
	// error (ENOSPC: the store keeps room on the spool's filesystem for
	// its metadata) fails the write.
	SpaceCheck func() error
	FsName     string // the mount's source, as mount(8) and df show it
	UID, GID   uint32
	Logger     *log.Logger // where damage and failures are reported
	Observer   Observer    // metrics; nil: none

	// Commit makes everything stored through the mount so far durable
	// (the group commit: the volume's pending fsyncs, then the metadata's).
	// With it, files are stored with their syncs deferred, and fsync(2)
	// commits; without it (nil), every store is durable at once.
	Commit func(context.Context) error
	// SyncOnClose commits at every close(2) of a written file too, as
	// fsync would (needs Commit).
	SyncOnClose bool
}

// Kernel cache timeouts. Blobs never change (their mtime only through
// the mount, which updates the kernel), so their entries and attributes
// are cached for long; files being written change and may vanish (a
// failed close), so theirs are not cached at all.
const (
	blobTimeout    = time.Hour
	pendingTimeout = 0
)

// Inode numbers: the root and ref/ are fixed; a blob's is derived from its
// ref (the first 8 bytes, top two bits clear), so it is the same at every
// mount; the files/ tree's come from the metadata store (top bits 01); files
// being written to ref/ get go-fuse's automatic numbers, from 2^63 up;
// snapshots/ has the top bits 11 (snapshot_ino.go).
const (
	rootIno = 1
	refIno  = 2
)

func inoOf(ref blobstore.Ref) uint64 {
	ino := binary.BigEndian.Uint64(ref[:8]) & (metastore.TreeInoBase - 1)
	if ino < 16 {
		ino += 16
	}
	return ino
}

// FS is the mounted filesystem's shared state.
type FS struct {
	cfg       Config
	mountTime time.Time
	ref       *refDir
	snapInos  *snapInos  // inode numbers under snapshots/
	trees     *treeCache // snapshot tree blobs; nil without Snapshots
	holds     *holds     // what a garbage collection must keep (holds.go)

	noSpaceMu      sync.Mutex // guards noSpaceLogged and noSpaceSkipped
	noSpaceLogged  time.Time  // when an ENOSPC answer was last logged
	noSpaceSkipped int        // ENOSPC answers not logged since

	readdirSizes *sync.Map // READDIR requests' reply sizes, by cancel channel (Mount, mount.go)
}

// noSpaceLogEvery is how often an ENOSPC answer is logged at most: a full
// disk answers it to every write, and the log may be on that disk.
const noSpaceLogEvery = 10 * time.Second

// New returns the root node of a mount.
func New(cfg Config) *Root {
	f := &FS{cfg: cfg, mountTime: time.Now(), snapInos: newSnapInos(), holds: newHolds()}
	f.ref = newRefDir(f)
	if cfg.Snapshots != nil {
		f.trees = newTreeCache(cfg.Snapshots.LoadTree)
	}
	return &Root{fsys: f}
}

// Options returns the go-fuse options for mounting root: the kernel checks
// permissions against the attributes the mount shows (default_permissions:
// files/ and snapshots/ keep owners and modes, ref/ is its owner's), modes
// as they are (0 too), no
// default cache timeouts (every reply sets its own: go-fuse would replace a
// zero with the default), no negative caching (new blobs appear at once),
// plain READDIR (a listing creates no inodes), and handler panics turned
// into EIO.
func (r *Root) Options() *fs.Options {
	zero := time.Duration(0)
	opts := &fs.Options{
		NegativeTimeout: &zero,
		// A mode of 0 is a file's mode (open(2) and mkdir(2) may ask
		// for it), not a missing one for go-fuse to make 0644.
		NullPermissions: true,
		UID:             r.fsys.cfg.UID,
		GID:             r.fsys.cfg.GID,
		MountOptions: fuse.MountOptions{
			FsName:     r.fsys.cfg.FsName,
			Name:       "stofuse",
			Options:    []string{"default_permissions"},
			AllowOther: r.fsys.cfg.AllowOther,
			MaxWrite:   1 << 20,
			// Replies are built in memory (decrypted frames): splicing
			// them gains nothing, and go-fuse's attempt fails (and logs)
			// for every 1 MiB read.
			DisableSplice: true,
			MaxBackground: 64,
			// Files open for writing are FOPEN_DIRECT_IO (every write
			// reaches the daemon's session); this lets them be mapped
			// shared and writable all the same (Linux 6.6 and later),
			// the kernel keeping the mapping and read(2)/write(2)
			// coherent.
			// READDIRPLUS (a listing's entries come with their
			// attributes, looked up a run at a time: listing.Lookup)
			// where the kernel sees it pay: the first reply of a listing,
			// and those of a listing whose entries are being stat'ed.
			ExtraCapabilities: fuse.CAP_DIRECT_IO_ALLOW_MMAP | fuse.CAP_READDIRPLUS_AUTO,
			PanicHandler: func(p any) fuse.Status {
				r.fsys.logf("a filesystem handler panicked (answered with EIO, the mount stays up): %v", p)
				return fuse.EIO
			},
		},
	}
	if r.fsys.cfg.ReadOnly {
		opts.MountOptions.Options = append(opts.MountOptions.Options, "ro")
		opts.MountOptions.DirectMountFlags = syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_RDONLY
	}
	return opts
}

// SetReadahead sets how far ahead the kernel reads a mounted filesystem's
// files (its bdi's read_ahead_kb). The kernel starts FUSE mounts at 128 KiB,
// which leaves a sequential reader waiting on every request. Needs root.
func SetReadahead(mountpoint string, kib int) error {
	var st unix.Stat_t
	if err := unix.Stat(mountpoint, &st); err != nil {
		return err
	}
	path := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	return os.WriteFile(path, []byte(strconv.Itoa(kib)), 0)
}

func (f *FS) logf(format string, args ...any) {
	if f.cfg.Logger != nil {
		f.cfg.Logger.Printf(format, args...)
	}
}

// errno maps err for a reply about what, and logs what the user cannot
// see in an errno: damage, and failures that are not "not found".
func (f *FS) errno(what string, err error) syscall.Errno {
	errno := toErrno(err)
	if errno == syscall.ENOSPC {
		f.logNoSpace(what, err)
	} else if errno != 0 && errno != syscall.ENOENT {
		f.logf("%s: %v (answered with %v)", what, err, errno)
	}
	return errno
}

// logNoSpace logs an ENOSPC answer, at most one every noSpaceLogEvery
// with the count of those left out.
func (f *FS) logNoSpace(what string, err error) {
	f.noSpaceMu.Lock()
	if time.Since(f.noSpaceLogged) < noSpaceLogEvery {
		f.noSpaceSkipped++
		f.noSpaceMu.Unlock()
		return
	}
	skipped := f.noSpaceSkipped
	f.noSpaceLogged, f.noSpaceSkipped = time.Now(), 0
	f.noSpaceMu.Unlock()
	more := ""
	if skipped > 0 {
		more = fmt.Sprintf("; and %d more ENOSPC answers since the last one logged", skipped)
	}
	f.logf("%s: %v (answered with %v%s)", what, err, syscall.ENOSPC, more)
}

// fileMode is the permission of files: writable unless read-only.
func (f *FS) fileMode() uint32 {
	if f.cfg.ReadOnly {
		return 0o444
	}
	return 0o644
}

func (f *FS) dirMode() uint32 {
	if f.cfg.ReadOnly {
		return 0o555
	}
	return 0o755
}

// blobAttr fills the attributes of a committed blob.
func (f *FS) blobAttr(meta *diskaccess.BlobMeta, mtimeNano int64, out *fuse.Attr) {
	out.Ino = inoOf(meta.Ref)
	out.Mode = syscall.S_IFREG | f.fileMode()
	out.Nlink = 1
	out.Size = uint64(meta.RealSize)
	out.Blocks = uint64(meta.SizeOnDisk+511) / 512 // du shows what the volume holds
	out.Blksize = 1 << diskaccess.DefaultFrameShift
	out.Owner = fuse.Owner{Uid: f.cfg.UID, Gid: f.cfg.GID}
	mtime := meta.Created
	if mtimeNano != 0 {
		mtime = time.Unix(0, mtimeNano)
	}
	out.SetTimes(&mtime, &mtime, &mtime)
}

func (f *FS) dirAttr(ino uint64, out *fuse.Attr) {
	out.Ino = ino
	out.Mode = syscall.S_IFDIR | f.dirMode()
	out.Nlink = 2
	out.Owner = fuse.Owner{Uid: f.cfg.UID, Gid: f.cfg.GID}
	out.SetTimes(&f.mountTime, &f.mountTime, &f.mountTime)
}

// Root is the mount's root directory: it holds ref/, files/ and snapshots/.
type Root struct {
	fs.Inode
	fsys *FS
}

var (
	_ fs.NodeOnAdder   = (*Root)(nil)
	_ fs.NodeLookuper  = (*Root)(nil)
	_ fs.NodeGetattrer = (*Root)(nil)
)

// OnAdd implements fs.NodeOnAdder.
func (r *Root) OnAdd(ctx context.Context) {
	child := r.NewPersistentInode(ctx, r.fsys.ref, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: refIno})
	r.AddChild("ref", child, false)
	if r.fsys.cfg.Tree != nil {
		files := r.NewPersistentInode(ctx, &filesRoot{fsys: r.fsys}, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: filesIno})
		r.AddChild("files", files, false)
	}
	if r.fsys.cfg.Snapshots != nil {
		snapshots := r.NewPersistentInode(ctx, &snapshotsRoot{fsys: r.fsys}, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: snapshotsIno})
		r.AddChild("snapshots", snapshots, false)
	}
}

// Lookup implements fs.NodeLookuper, so that the entry for ref/ is cached
// for long.
func (r *Root) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := checkName(name); errno != 0 {
		return nil, errno
	}
	child := r.GetChild(name)
	if child == nil {
		return nil, syscall.ENOENT
	}
	var attr fuse.AttrOut // each top directory says its own (snapshots/ is read-only)
	if errno := child.Operations().(fs.NodeGetattrer).Getattr(ctx, nil, &attr); errno != 0 {
		return nil, errno
	}
	out.Attr = attr.Attr
	out.SetEntryTimeout(blobTimeout)
	out.SetAttrTimeout(blobTimeout)
	return child, 0
}

// Getattr implements fs.NodeGetattrer.
func (r *Root) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	r.fsys.dirAttr(rootIno, &out.Attr)
	out.SetTimeout(blobTimeout)
	return 0
}

func describe(op string, name string) string { return fmt.Sprintf("%s ref/%s", op, name) }

// Observer is told what the mount does, for metrics. Every method may be
// called from many goroutines at once, and must not block.
type Observer interface {
	// Read is a read of a file: how many bytes it returned, how long it
	// took, and its errno (0 on success).
	Read(bytes int, took time.Duration, errno syscall.Errno)
	// Stored is a file stored as a blob at close or fsync.
	Stored(bytes int64, took time.Duration, errno syscall.Errno)
	// Corrupt is a read that met a damaged blob.
	Corrupt()
}

// observeRead reports a read to the observer, if there is one.
func (f *FS) observeRead(bytes int, start time.Time, errno syscall.Errno) {
	if o := f.cfg.Observer; o != nil {
		o.Read(bytes, time.Since(start), errno)
		if errno == syscall.EIO {
			o.Corrupt()
		}
	}
}

func (f *FS) observeStored(bytes int64, start time.Time, errno syscall.Errno) {
	if o := f.cfg.Observer; o != nil {
		o.Stored(bytes, time.Since(start), errno)
	}
}
