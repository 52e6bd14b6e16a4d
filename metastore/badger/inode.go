package badger

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore"
)

// The tree's types live in package metastore.
type (
	Kind  = metastore.Kind
	Inode = metastore.Inode
	Entry = metastore.Entry
)

const (
	KindFile     = metastore.KindFile
	KindDir      = metastore.KindDir
	KindSymlink  = metastore.KindSymlink
	KindFifo     = metastore.KindFifo
	KindSocket   = metastore.KindSocket
	KindCharDev  = metastore.KindCharDev
	KindBlockDev = metastore.KindBlockDev
)

// An inode record, binary:
//
//	version 1 byte (2) | kind 1 | flags 1 (bit 0 committed, bit 1 a link count follows,
//	                                       bit 2 extended attributes: a keys, xattr.go)
//	mode, uid, gid, size uvarint | mtime, ctime, atime varint (Unix ns)
//	ref 32 bytes (files) | stored size uvarint (files) | target (symlinks: uvarint length, bytes)
//	| rdev uvarint (character and block devices) | nlink uvarint (with flag bit 1)
//
// The link count is written only when it is above 1 (hard links), for a
// directory above 2 (it has subdirectories), so that a record without the
// flag has one name, or no subdirectory; a reader that does not know the
// flag refuses the record (its trailing bytes) rather than miscount.
// Kinds 4 and 5 (FIFOs, sockets) have no field of their own. A record of
// a kind that a reader does not know is refused, so kinds were added
// without a new version. Version 1 records, written before atime was
// kept, have no atime: they read with the mtime as the atime.
const (
	inodeVersion       = 2
	inodeVersionNoTime = 1
)

func encodeInode(n *Inode) []byte {
	var flags byte
	if n.Committed {
		flags |= 1
	}
	linked := n.Nlink > 1 && (n.Kind != KindDir || n.Nlink > 2)
	if linked {
		flags |= 2
	}
	if n.HasXattrs {
		flags |= 4
	}
	atime := n.Atime
	if atime.IsZero() {
		atime = n.Mtime
	}
	b := []byte{inodeVersion, byte(n.Kind), flags}
	b = binary.AppendUvarint(b, uint64(n.Mode))
	b = binary.AppendUvarint(b, uint64(n.UID))
	b = binary.AppendUvarint(b, uint64(n.GID))
	b = binary.AppendUvarint(b, uint64(n.Size))
	b = binary.AppendVarint(b, n.Mtime.UnixNano())
	b = binary.AppendVarint(b, n.Ctime.UnixNano())
	b = binary.AppendVarint(b, atime.UnixNano())
	switch n.Kind {
	case KindFile:
		b = append(b, n.Ref[:]...)
		b = binary.AppendUvarint(b, uint64(n.StoredSize))
	case KindSymlink:
		b = binary.AppendUvarint(b, uint64(len(n.Target)))
		b = append(b, n.Target...)
	case KindCharDev, KindBlockDev:
		b = binary.AppendUvarint(b, uint64(n.Rdev))
	}
	if linked {
		b = binary.AppendUvarint(b, uint64(n.Nlink))
	}
	return b
}

func decodeInode(ino uint64, b []byte) (*Inode, error) {
	if len(b) < 3 || b[0] != inodeVersion && b[0] != inodeVersionNoTime {
		return nil, fmt.Errorf("inode %d: %w", ino, errBadRecord)
	}
	if b[2]&^7 != 0 {
		return nil, fmt.Errorf("inode %d has unknown flags %#x: %w", ino, b[2], errBadRecord)
	}
	n := &Inode{Ino: ino, Kind: Kind(b[1]), Committed: b[2]&1 != 0, HasXattrs: b[2]&4 != 0}
	d := &recordDecoder{b: b[3:]}
	n.Mode = uint32(d.uvarint())
	n.UID = uint32(d.uvarint())
	n.GID = uint32(d.uvarint())
	n.Size = int64(d.uvarint())
	n.Mtime = time.Unix(0, d.varint())
	n.Ctime = time.Unix(0, d.varint())
	n.Atime = n.Mtime
	if b[0] == inodeVersion {
		n.Atime = time.Unix(0, d.varint())
	}
	switch n.Kind {
	case KindFile:
		if ref := d.bytes(blobstore.RefSize); d.err == nil {
			n.Ref = blobstore.Ref(ref)
		}
		n.StoredSize = int64(d.uvarint())
	case KindSymlink:
		n.Target = string(d.bytes(d.uvarint()))
	case KindCharDev, KindBlockDev:
		n.Rdev = uint32(d.uvarint())
	case KindDir, KindFifo, KindSocket:
	default:
		return nil, fmt.Errorf("inode %d has unknown kind %d: %w", ino, n.Kind, errBadRecord)
	}
	if b[2]&2 != 0 {
		nlink := d.uvarint()
		if nlink < 2 || n.Kind == KindDir && nlink < 3 || nlink > maxLinkCount(n.Kind) {
			return nil, fmt.Errorf("inode %d: link count %d: %w", ino, nlink, errBadRecord)
		}
		n.Nlink = uint32(nlink)
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, fmt.Errorf("inode %d: %w", ino, errBadRecord)
	}
	return n, nil
}

// maxLinkCount is the largest link count of an inode of kind: MaxLinks
// names, or for a directory 2 and up to 2^31 subdirectories.
func maxLinkCount(kind Kind) uint64 {
	if kind == KindDir {
		return 1<<31 + 2
	}
	return MaxLinks
}
