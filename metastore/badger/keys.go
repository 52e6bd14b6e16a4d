package badger

import (
	"encoding/binary"

	"github.com/stofuse/stofuse/blobstore"
)

// Key space. Every key starts with a one-byte prefix naming its table.
//
//	b <ref 32>                 blob record (blobRecord, binary; its flag bit 2: an explicit store)
//	v <volume id u32 BE> <ref> a blob the volume holds (empty value)
//	n <volume id u32 BE>       the volume's blob count and bytes (2 x u64 BE)
//	V <volume id u32 BE>       volume record (JSON)
//	c <collection name>        collection record (JSON)
//	k <key id>                 key envelope (JSON)
//	m <name>                   store settings (JSON): "kdf"; "next-ino" (u64 BE); "copies" (copies.go); "tree-index" and
//	                           "explicit-stores" (migrations done: tree_stamp.go, explicit.go)
//	i <ino u64 BE>             inode of the files/ tree (Inode, binary)
//	e <parent u64 BE> <name>   directory entry: child ino (u64 BE) and kind (1 byte)
//	u <ino u64 BE>             a file created but never stored: removed at mount
//	p <ino u64 BE>             the inode's parent directory (u64 BE): to refuse moving a directory into
//	                           itself, and to mark the directory whose listing a change touches
//	l <ino u64 BE> <dir u64 BE> how many names of a file with several (hard links) dir holds (u32 BE;
//	                           links.go)
//	a <ino u64 BE> <name>      an extended attribute of the inode: its value (xattr.go)
//	r <ref 32> <ino u64 BE>    file ino's content is blob ref (empty value): which files use a blob
//	d <parent u64 BE> <name>   a subdirectory's ino (u64 BE): the directories alone, so that a
//	                           snapshot visits them without listing their files
//	g <dir ino u64 BE>         the stamp (u64 BE) of the last change to the directory's listing or
//	                           to an attribute of one of its entries
//	t <dir ino u64 BE>         the directory's tree ref as last snapshotted: the stamp it was made at
//	                           (u64 BE) and the ref (32); valid while g still holds that stamp
//	x <len 1> <key id> <ref>   the blob's record changed since the blob index of the collection with
//	                           that key was written: the stamp (u64 BE) of the change (blob_index.go)
//	j <kind 1> ...             the journal of what may not be durable yet: j b <ref> <volume id u32 BE>,
//	                           j i <ino>, j r <ino> <ino> (journal.go, replaced.go; docs/format.md)
//	z <volume id u32 BE> <ref> a copy a garbage collection is removing from the volume, its blob no
//	                           longer recorded: the copy's stored size (u64 BE) (condemned.go)
const (
	prefixBlob        = 'b'
	prefixVolumeBlob  = 'v'
	prefixVolumeCount = 'n'
	prefixVolume      = 'V'
	prefixCollection  = 'c'
	prefixEnvelope    = 'k'
	prefixSetting     = 'm'
	prefixInode       = 'i'
	prefixEntry       = 'e'
	prefixUncommitted = 'u'
	prefixParent      = 'p'
	prefixLinkDir     = 'l'
	prefixXattr       = 'a'
	prefixRefUse      = 'r'
	prefixSubdir      = 'd'
	prefixDirStamp    = 'g'
	prefixTreeCache   = 't'
	prefixIndexMark   = 'x'
	prefixJournal     = 'j'
	prefixCondemned   = 'z'
)

func blobKey(ref blobstore.Ref) []byte {
	return append([]byte{prefixBlob}, ref[:]...)
}

func volumeIDKey(prefix byte, volumeID int) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefix}, uint32(volumeID))
}

func volumeBlobKey(volumeID int, ref blobstore.Ref) []byte {
	return append(volumeIDKey(prefixVolumeBlob, volumeID), ref[:]...)
}

func inoKey(prefix byte, ino uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefix}, ino)
}

func refUseKey(ref blobstore.Ref, ino uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte{prefixRefUse}, ref[:]...), ino)
}

func entryKey(parent uint64, name string) []byte {
	return append(inoKey(prefixEntry, parent), name...)
}

func subdirKey(parent uint64, name string) []byte {
	return append(inoKey(prefixSubdir, parent), name...)
}

func stringKey(prefix byte, name string) []byte {
	return append([]byte{prefix}, name...)
}
