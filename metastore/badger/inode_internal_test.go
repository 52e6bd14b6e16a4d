package badger

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
)

// TestInodeCodec: every kind of inode record decodes to what was encoded,
// devices with their number, atimes (none set: the mtime), link counts
// above 1; a version 1
// record (no atime) still reads; an unknown kind, a cut record and one
// with bytes left over are refused.
func TestInodeCodec(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 30, 5, 123456789, time.UTC)
	for name, n := range map[string]Inode{
		"file":         {Kind: KindFile, Mode: 0o4755, UID: 1000, GID: 100, Size: 5, Mtime: at, Ctime: at, Ref: blobstore.RefOf([]byte("hello")), StoredSize: 94, Committed: true},
		"new file":     {Kind: KindFile, Mode: 0o600, Mtime: at, Ctime: at},
		"atime":        {Kind: KindFile, Mode: 0o600, Mtime: at, Ctime: at, Atime: time.Unix(1900000000, 7).UTC()},
		"atime 0":      {Kind: KindFile, Mode: 0o600, Mtime: at, Ctime: at, Atime: time.Unix(0, 0).UTC()},
		"dir":          {Kind: KindDir, Mode: 0o2775, GID: 4321, Mtime: at, Ctime: at},
		"symlink":      {Kind: KindSymlink, Mode: 0o777, Size: 3, Mtime: at, Ctime: at, Target: "a/b"},
		"fifo":         {Kind: KindFifo, Mode: 0o640, UID: 65534, Mtime: at, Ctime: at},
		"socket":       {Kind: KindSocket, Mode: 0o755, Mtime: at, Ctime: at},
		"char device":  {Kind: KindCharDev, Mode: 0o666, Mtime: at, Ctime: at, Rdev: 1<<8 | 3},
		"block device": {Kind: KindBlockDev, Mode: 0o660, GID: 6, Mtime: at, Ctime: at, Rdev: 0xffffffff},
		"device 0:0":   {Kind: KindCharDev, Mtime: at, Ctime: at},
		"linked file":  {Kind: KindFile, Mode: 0o644, Mtime: at, Ctime: at, Ref: blobstore.RefOf([]byte("x")), StoredSize: 60, Committed: true, Nlink: 3},
		"linked fifo":  {Kind: KindFifo, Mode: 0o644, Mtime: at, Ctime: at, Nlink: MaxLinks},
		"xattrs":       {Kind: KindDir, Mode: 0o755, Mtime: at, Ctime: at, HasXattrs: true},
	} {
		n.Ino = TreeInoBase | 7
		b := encodeInode(&n)
		got, err := decodeInode(n.Ino, b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		got.Mtime, got.Ctime, got.Atime = got.Mtime.UTC(), got.Ctime.UTC(), got.Atime.UTC()
		if n.Atime.IsZero() {
			n.Atime = n.Mtime // none set: reads as the mtime
		}
		if *got != n {
			t.Errorf("%s: decoded %+v, want %+v", name, *got, n)
		}
		if _, err := decodeInode(n.Ino, b[:len(b)-1]); !errors.Is(err, errBadRecord) {
			t.Errorf("%s cut by a byte: %v, want errBadRecord", name, err)
		}
		if _, err := decodeInode(n.Ino, append(b, 0)); !errors.Is(err, errBadRecord) {
			t.Errorf("%s with a byte more: %v, want errBadRecord", name, err)
		}
	}
	// A record from before atime was kept (version 1) reads with the
	// mtime as its atime.
	v1 := binary.AppendUvarint([]byte{1, byte(KindDir), 0}, 0o755)
	v1 = append(v1, 3, 0, 0) // uid 3, gid and size 0
	v1 = binary.AppendVarint(v1, at.UnixNano())
	v1 = binary.AppendVarint(v1, at.Add(time.Second).UnixNano())
	if got, err := decodeInode(TreeInoBase, v1); err != nil || got.Mode != 0o755 || got.UID != 3 || !got.Atime.Equal(at) || !got.Ctime.Equal(at.Add(time.Second)) {
		t.Errorf("a version 1 record: %+v, %v", got, err)
	}
	unknown := encodeInode(&Inode{Kind: KindFifo})
	unknown[1] = 8
	if _, err := decodeInode(TreeInoBase, unknown); !errors.Is(err, errBadRecord) {
		t.Errorf("an inode of kind 8: %v, want errBadRecord", err)
	}
}

// TestInodeLinkCount: a link count is written only above 1 (a
// directory's above 2), and a record
// with a count a writer never writes is refused.
func TestInodeLinkCount(t *testing.T) {
	one := Inode{Ino: TreeInoBase | 1, Kind: KindFile, Nlink: 1}
	if b := encodeInode(&one); b[2]&2 != 0 {
		t.Errorf("a file with one name is written with a link count: %x", b)
	}
	dir := Inode{Ino: TreeInoBase | 2, Kind: KindDir, Nlink: 2}
	if b := encodeInode(&dir); b[2]&2 != 0 {
		t.Errorf("a directory without subdirectories is written with a link count: %x", b)
	}
	dir.Nlink = 5
	if got, err := decodeInode(dir.Ino, encodeInode(&dir)); err != nil || got.DirLinks() != 5 {
		t.Errorf("a directory with 3 subdirectories reads back with link count %d, %v", got.DirLinks(), err)
	}
	b := encodeInode(&Inode{Ino: TreeInoBase | 2, Kind: KindDir})
	b[2] |= 2
	if _, err := decodeInode(TreeInoBase|2, binary.AppendUvarint(b, 2)); !errors.Is(err, errBadRecord) {
		t.Errorf("a directory with a written link count of 2: %v, want errBadRecord", err)
	}
	for _, nlink := range []uint64{0, 1, MaxLinks + 1} {
		b := encodeInode(&Inode{Ino: TreeInoBase | 3, Kind: KindSymlink, Target: "t"})
		b[2] |= 2
		b = binary.AppendUvarint(b, nlink)
		if _, err := decodeInode(TreeInoBase|3, b); !errors.Is(err, errBadRecord) {
			t.Errorf("a link count of %d: %v, want errBadRecord", nlink, err)
		}
	}
	b = encodeInode(&Inode{Ino: TreeInoBase | 4, Kind: KindFile})
	b[2] |= 8
	if _, err := decodeInode(TreeInoBase|4, b); !errors.Is(err, errBadRecord) {
		t.Errorf("an unknown flag: %v, want errBadRecord", err)
	}
}
