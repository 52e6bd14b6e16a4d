package snapshot

import (
	"strings"
	"time"

	"github.com/stofuse/stofuse/blobstore"
)

// Kind is what an entry is. The values are those of metastore.Kind, so a
// conversion is a plain Kind(k) either way; this package does not import
// metastore so that the codec depends on blobstore alone.
type Kind byte

// The kinds of entry this format version knows; a reader rejects others
// as written by a newer format.
const (
	KindFile     Kind = 1
	KindDir      Kind = 2
	KindSymlink  Kind = 3
	KindFifo     Kind = 4
	KindSocket   Kind = 5
	KindCharDev  Kind = 6
	KindBlockDev Kind = 7
)

// lastKind is the highest kind this format version knows.
const lastKind = KindBlockDev

// isDevice reports whether an entry of kind k has a device number.
func (k Kind) isDevice() bool { return k == KindCharDev || k == KindBlockDev }

// String names the kind, for error messages.
func (k Kind) String() string {
	switch k {
	case KindFile:
		return "file"
	case KindDir:
		return "dir"
	case KindSymlink:
		return "symlink"
	case KindFifo:
		return "fifo"
	case KindSocket:
		return "socket"
	case KindCharDev:
		return "character device"
	case KindBlockDev:
		return "block device"
	}
	return "unknown kind"
}

// Limits on an entry. MaxName is the longest name Linux allows;
// MaxTarget keeps a symlink target under PATH_MAX with its NUL; MaxLinks
// is the most names an inode of the files/ tree may have
// (metastore/badger.MaxLinks).
const (
	MaxName   = 255
	MaxTarget = 4095
	MaxLinks  = 65000
	// MaxEntrySize bounds one encoded entry, so that an entry always fits
	// in a leaf blob with room to spare (see maxBody).
	MaxEntrySize = 64 << 10
)

// Entry is a name in a snapshotted directory with everything needed to
// restore it: its attributes, its content (files), target (symlinks) or
// listing (directories), and its inode number, so that inode numbers
// survive a recovery.
type Entry struct {
	Name     string
	Kind     Kind
	Ino      uint64 // never zero
	Mode     uint32 // permission bits, 07777 at most
	UID, GID uint32
	Size     int64 // as the tree holds it; never negative
	Mtime    time.Time
	Ctime    time.Time
	// Ref is a file's content (zero for a file never committed, which must
	// then have no size) or a directory's root tree ref (never zero). A
	// symlink has none.
	Ref blobstore.Ref
	// StoredSize is a file's blob stored size; zero for other kinds and for
	// a file without content.
	StoredSize int64
	Target     string // symlinks only, never empty
	Rdev       uint32 // character and block devices only: the device number (st_rdev)
	// Nlink is the number of names of an inode with several (hard links,
	// all in the snapshot's collection, each an entry with this Ino): 2 or
	// more; 0 for an inode with one name, and for directories.
	Nlink uint32
	// Xattrs are the inode's extended attributes, in name order (none:
	// nil).
	Xattrs []Xattr
}

// Validate checks that e can be encoded: a valid name, a known kind and
// only the fields that belong to its kind. Errors wrap ErrInvalid.
func (e *Entry) Validate() error {
	if err := ValidName(e.Name); err != nil {
		return err
	}
	if e.Ino == 0 || e.Mode&^0o7777 != 0 || e.Size < 0 || e.StoredSize < 0 {
		return invalid("entry %q: inode %d, mode %o, size %d, stored size %d", e.Name, e.Ino, e.Mode, e.Size, e.StoredSize)
	}
	if e.Nlink == 1 || e.Nlink > MaxLinks || e.Nlink != 0 && e.Kind == KindDir {
		return invalid("entry %q: a %s with a link count of %d", e.Name, e.Kind, e.Nlink)
	}
	if err := validXattrs(e); err != nil {
		return err
	}
	if e.Rdev != 0 && !e.Kind.isDevice() {
		return invalid("entry %q: a device number, but a %s", e.Name, e.Kind)
	}
	switch e.Kind {
	case KindFile:
		if e.Target != "" || e.Ref.IsZero() && (e.Size != 0 || e.StoredSize != 0) {
			return invalid("file %q: a target, or a size without content", e.Name)
		}
	case KindDir:
		if e.Target != "" || e.Ref.IsZero() || e.StoredSize != 0 {
			return invalid("directory %q: needs a tree ref and no target or stored size", e.Name)
		}
	case KindSymlink:
		if e.Target == "" || len(e.Target) > MaxTarget || strings.IndexByte(e.Target, 0) >= 0 ||
			!e.Ref.IsZero() || e.StoredSize != 0 {
			return invalid("symlink %q: needs a target of 1..%d bytes without NUL, and no ref", e.Name, MaxTarget)
		}
	case KindFifo, KindSocket, KindCharDev, KindBlockDev:
		if e.Target != "" || !e.Ref.IsZero() || e.Size != 0 || e.StoredSize != 0 {
			return invalid("%s %q: a special file has no target, content or size", e.Kind, e.Name)
		}
	default:
		return invalid("entry %q: unknown kind %d", e.Name, e.Kind)
	}
	return nil
}

// ValidName checks one path component: 1..255 bytes, no '/' or NUL, not
// "." or "..". Errors wrap ErrInvalid.
func ValidName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > MaxName || strings.ContainsAny(name, "/\x00") {
		return invalid("%q is not a file name", truncateName(name))
	}
	return nil
}

// Equal reports whether two entries say the same thing; times compare as
// instants (time.Time's location is not part of a snapshot).
func (e *Entry) Equal(o *Entry) bool {
	return e.sameAttributes(o) && e.Ref == o.Ref
}

// sameAttributes is Equal without the ref: for directories, whether the
// directory itself changed, as opposed to its listing.
func (e *Entry) sameAttributes(o *Entry) bool {
	return e.Name == o.Name && e.Kind == o.Kind && e.Ino == o.Ino && e.Mode == o.Mode &&
		e.UID == o.UID && e.GID == o.GID && e.Size == o.Size && e.Mtime.Equal(o.Mtime) &&
		e.Ctime.Equal(o.Ctime) && e.StoredSize == o.StoredSize && e.Target == o.Target && e.Rdev == o.Rdev &&
		e.Nlink == o.Nlink && sameXattrs(e.Xattrs, o.Xattrs)
}

func truncateName(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
