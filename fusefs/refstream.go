package fusefs

import (
	"context"
	"errors"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/stofuse/stofuse/blobstore"
)

// listPage is how many entries a listing reads from the metadata store at
// a time.
const listPage = 4096

// refStream lists ref/: the written names first, then the volume's blobs
// in ref order, one page at a time.
type refStream struct {
	fsys    *FS
	initial []string // the written names the listing started with
	pending []string
	seen    map[string]bool // pending names, so a blob is not listed twice
	pager[blobstore.Ref]
	after blobstore.Ref // the last ref read
}

var _ fs.DirStream = (*refStream)(nil)

func newRefStream(f *FS, pending []string) *refStream {
	seen := make(map[string]bool, len(pending))
	for _, name := range pending {
		seen[name] = true
	}
	return &refStream{fsys: f, initial: pending, pending: pending, seen: seen}
}

// fill reads the next page of refs into the same buffer.
func (s *refStream) fill() {
	s.read(func(add func(blobstore.Ref) error) error {
		return s.fsys.cfg.Catalog.ListVolumeBlobs(context.Background(), s.fsys.cfg.Volume, s.after, add)
	})
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
	return skipEntries(s, off)
}

// skipEntries reads n entries of s and drops them: how a stream that
// can only start over serves Seekdir.
func skipEntries(s fs.DirStream, n uint64) syscall.Errno {
	for ; n > 0 && s.HasNext(); n-- {
		if _, errno := s.Next(); errno != 0 {
			return errno
		}
	}
	return 0
}

// pager holds one page of a listing read from the metadata store: a
// listing of millions of entries holds one page at a time.
type pager[T any] struct {
	page []T // read and not yet listed: page[next:]
	next int
	done bool // the metadata store has no more
	err  error
}

var errPageFull = errors.New("page full")

// read replaces the page, reusing its buffer, with up to listPage entries
// that list passes to add.
func (p *pager[T]) read(list func(add func(T) error) error) {
	p.page, p.next = p.page[:0], 0
	err := list(func(e T) error {
		p.page = append(p.page, e)
		if len(p.page) == listPage {
			return errPageFull
		}
		return nil
	})
	switch {
	case errors.Is(err, errPageFull):
	case err != nil:
		p.err, p.done = err, true
	default:
		p.done = true
	}
}
