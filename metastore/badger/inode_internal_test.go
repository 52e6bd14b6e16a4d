package badger

import (
	"errors"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
)

// TestInodeCodec: every kind of inode record decodes to what was encoded,
// devices with their number; an unknown kind, a cut record and one with
// bytes left over are refused.
func TestInodeCodec(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 30, 5, 123456789, time.UTC)
	for name, n := range map[string]Inode{
		"file":         {Kind: KindFile, Mode: 0o4755, UID: 1000, GID: 100, Size: 5, Mtime: at, Ctime: at, Ref: blobstore.RefOf([]byte("hello")), StoredSize: 94, Committed: true},
		"new file":     {Kind: KindFile, Mode: 0o600, Mtime: at, Ctime: at},
		"dir":          {Kind: KindDir, Mode: 0o2775, GID: 4321, Mtime: at, Ctime: at},
		"symlink":      {Kind: KindSymlink, Mode: 0o777, Size: 3, Mtime: at, Ctime: at, Target: "a/b"},
		"fifo":         {Kind: KindFifo, Mode: 0o640, UID: 65534, Mtime: at, Ctime: at},
		"socket":       {Kind: KindSocket, Mode: 0o755, Mtime: at, Ctime: at},
		"char device":  {Kind: KindCharDev, Mode: 0o666, Mtime: at, Ctime: at, Rdev: 1<<8 | 3},
		"block device": {Kind: KindBlockDev, Mode: 0o660, GID: 6, Mtime: at, Ctime: at, Rdev: 0xffffffff},
		"device 0:0":   {Kind: KindCharDev, Mtime: at, Ctime: at},
	} {
		n.Ino = TreeInoBase | 7
		b := encodeInode(&n)
		got, err := decodeInode(n.Ino, b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		got.Mtime, got.Ctime = got.Mtime.UTC(), got.Ctime.UTC()
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
	unknown := encodeInode(&Inode{Kind: KindFifo})
	unknown[1] = 8
	if _, err := decodeInode(TreeInoBase, unknown); !errors.Is(err, errBadRecord) {
		t.Errorf("an inode of kind 8: %v, want errBadRecord", err)
	}
}
