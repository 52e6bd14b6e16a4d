package fusefs

import (
	"context"
	"errors"
	"io"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/stofuse/stofuse/metastore"
	"github.com/stofuse/stofuse/metastore/snapshot"
)

// snapDirHandle lists a directory of a view from its tree with a Cursor,
// which holds one tree blob per level: a directory of a million entries
// is listed without holding them. Offsets count entries from the start,
// and a seek to one (a readdir resumed after an interrupted one, or
// telldir/seekdir) skips that many with Reader.Entries, loading only the
// blobs on the way. go-fuse calls a handle from one request at a time.
type snapDirHandle struct {
	dir    *snapDir
	cursor *snapshot.Cursor // nil until the first read or seek
}

var (
	_ fs.FileReaddirenter = (*snapDirHandle)(nil)
	_ fs.FileSeekdirer    = (*snapDirHandle)(nil)
)

// Readdirent returns the next entry, nil after the last.
func (h *snapDirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if h.cursor == nil {
		if errno := h.Seekdir(ctx, 0); errno != 0 {
			return nil, errno
		}
	}
	e, err := h.cursor.Next(ctx)
	if errors.Is(err, io.EOF) {
		return nil, 0
	}
	if err != nil {
		return nil, h.errno(err)
	}
	return &fuse.DirEntry{Name: e.Name, Ino: snapIno(h.dir.view.id, e.Ino), Mode: typeBits(metastore.Kind(e.Kind))}, 0
}

// Seekdir starts the listing again at entry off.
func (h *snapDirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	cursor, err := h.dir.reader().Entries(ctx, off)
	if err != nil {
		return h.errno(err)
	}
	h.cursor = cursor
	return 0
}

func (h *snapDirHandle) errno(err error) syscall.Errno {
	d := h.dir
	return d.view.fsys.errno(d.view.describe("listing", &d.entry), err)
}
