// Package metastore holds the types of the files/ tree that a metadata
// store keeps and the mount shows: inodes and directory entries. The
// store (metastore/badger) implements the operations; the mount (fusefs)
// defines the interface it needs.
package metastore

import (
	"time"

	"github.com/stofuse/stofuse/blobstore"
)

// Kind is what an inode of the files/ tree is.
type Kind byte

const (
	KindFile    Kind = 1
	KindDir     Kind = 2
	KindSymlink Kind = 3
	// Special files: what they are is all there is (no content), and a
	// device's number.
	KindFifo     Kind = 4
	KindSocket   Kind = 5
	KindCharDev  Kind = 6
	KindBlockDev Kind = 7
)

// IsDevice reports whether an inode of this kind has a device number.
func (k Kind) IsDevice() bool { return k == KindCharDev || k == KindBlockDev }

// TreeInoBase is the first inode number of the tree: the top two bits are
// 01. Blobs' inode numbers in ref/ come from their ref with the top two
// bits 00; the mount's own files use 10, and the views under snapshots/
// 11 (fusefs/snapshot_ino.go).
const TreeInoBase = 1 << 62

// Inode is a file, directory, symlink or special file of the files/ tree.
// A file's content is a blob: Ref, once committed.
type Inode struct {
	Ino      uint64
	Kind     Kind
	Mode     uint32 // permission bits (07777)
	UID, GID uint32
	Size     int64
	Mtime    time.Time
	Ctime    time.Time
	// Atime is kept as set (at creation, and by utimensat): reads do not
	// change it, as with noatime. Zero reads as the mtime (a tree
	// restored from a snapshot, which keeps none).
	Atime      time.Time
	Ref        blobstore.Ref // files: the content; zero until committed
	StoredSize int64         // files: the blob's stored size
	Target     string        // symlinks
	Rdev       uint32        // devices: the device number, as stat's st_rdev (Linux's encoding)
	Committed  bool          // files: content stored at least once
	// Nlink is how many names a file, symlink or special file has: more
	// than one once hard links name it; 0 reads as 1 (Links). A
	// directory's is 2 and one for each subdirectory; 0 reads as 2
	// (DirLinks).
	Nlink uint32
	// HasXattrs says the inode has extended attributes (Xattrs lists
	// them), so that inodes without any are never looked up for them.
	HasXattrs bool
}

// Xattr is an extended attribute of a tree inode: a user.* name and its
// value.
type Xattr struct {
	Name  string
	Value []byte
}

// Limits on extended attributes. A name is at most XATTR_NAME_MAX bytes,
// as the kernel allows; all the attributes of one inode together (names
// and values) at most MaxXattrsSize, so that a snapshot entry holds them
// (a set beyond it is ENOSPC, as on ext4 once its attribute block is
// full).
const (
	MaxXattrName  = 255
	MaxXattrsSize = 32 << 10
)

// Flags of a SetXattr, as setxattr(2)'s.
const (
	XattrCreate  = 1 // fail with EEXIST if the attribute exists
	XattrReplace = 2 // fail with ENODATA if it does not
)

// Links is n's number of names (Nlink, at least 1).
func (n *Inode) Links() uint32 { return max(n.Nlink, 1) }

// Linked reports whether n is a file, symlink or special file with more
// than one name (hard links).
func (n *Inode) Linked() bool { return n.Kind != KindDir && n.Nlink > 1 }

// DirLinks is a directory's link count: 2 and one for each of its
// subdirectories (Nlink, at least 2).
func (n *Inode) DirLinks() uint32 { return max(n.Nlink, 2) }

// Entry is a name in a directory.
type Entry struct {
	Name string
	Ino  uint64
	Kind Kind
}
