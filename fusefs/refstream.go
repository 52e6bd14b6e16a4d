package fusefs

import (
	"context"
	"errors"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/stofuse/stofuse/blobstore"
)

// listPage is how many refs a listing reads from the metadata store at a
// time: a listing of millions of blobs holds one page.
const listPage = 4096

// refStream lists ref/: the written names first, then the volume's blobs
// in ref order, one page at a time.
type refStream struct {
	fsys    *FS
	initial []string // the written names the listing started with
	pending []string
	seen    map[string]bool // pending names, so a blob is not listed twice
	page    []blobstore.Ref // refs read and not yet listed: page[next:]
	next    int
	after   blobstore.Ref // the last ref read
	done    bool          // the metadata store has no more
	err     error
}

var _ fs.DirStream = (*refStream)(nil)

func newRefStream(f *FS, pending []string) *refStream {
	seen := make(map[string]bool, len(pending))
	for _, name := range pending {
		seen[name] = true
	}
	return &refStream{fsys: f, initial: pending, pending: pending, seen: seen}
}

var errPageFull = errors.New("page full")

// fill reads the next page of refs into the same buffer.
func (s *refStream) fill() {
	s.page, s.next = s.page[:0], 0
	err := s.fsys.cfg.Catalog.ListVolumeBlobs(context.Background(), s.fsys.cfg.Volume, s.after,
		func(ref blobstore.Ref) error {
			s.page = append(s.page, ref)
			if len(s.page) == listPage {
				return errPageFull
			}
			return nil
		})
	switch {
	case errors.Is(err, errPageFull):
	case err != nil:
		s.err = err
		s.done = true
	default:
		s.done = true
	}
	if len(s.page) > 0 {
		s.after = s.page[len(s.page)-1]
	}
}

// HasNext implements fs.DirStream.
func (s *refStream) HasNext() bool {
	if len(s.pending) > 0 || s.err != nil {
		return true
	}
	for {
		for len(s.seen) > 0 && s.next < len(s.page) && s.seen[s.page[s.next].String()] {
			s.next++ // listed already, as a written name
		}
		if s.next < len(s.page) {
			return true
		}
		if s.done {
			return s.err != nil
		}
		s.fill()
	}
}

// Next implements fs.DirStream.
func (s *refStream) Next() (fuse.DirEntry, syscall.Errno) {
	if len(s.pending) > 0 {
		name := s.pending[0]
		s.pending = s.pending[1:]
		return fuse.DirEntry{Name: name, Mode: syscall.S_IFREG}, 0
	}
	if s.next == len(s.page) && s.err != nil {
		err := s.err
		s.err = nil
		return fuse.DirEntry{}, s.fsys.errno("listing ref/", err)
	}
	ref := s.page[s.next]
	s.next++
	return fuse.DirEntry{Name: ref.String(), Mode: syscall.S_IFREG, Ino: inoOf(ref)}, 0
}

// Close implements fs.DirStream.
func (s *refStream) Close() {}

// Seekdir implements fs.FileSeekdirer: offsets count entries from the
// start, so the listing starts again and skips that many.
func (s *refStream) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	*s = *newRefStream(s.fsys, s.initial)
	for ; off > 0 && s.HasNext(); off-- {
		if _, errno := s.Next(); errno != 0 {
			return errno
		}
	}
	return 0
}
