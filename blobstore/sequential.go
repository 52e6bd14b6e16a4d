package blobstore

import (
	"context"
	"io"
	"sync"
)

// SequentialReaderAt returns a RawReaderAt over the blob under ref for a
// Driver that can only read from the start (one that is not a
// RandomAccessDriver): a read forward of the last one skips ahead in the
// open stream, a read backward (or after a failed read) opens the blob
// again with RawFetch. Each reopening reads the blob stored then, so unlike
// RawOpen it does not pin the version that was there at open.
//
// It returns an fs.ErrNotExist error if there is no blob under ref. ctx
// bounds every RawFetch the reader makes, until Close.
func SequentialReaderAt(ctx context.Context, driver Driver, ref Ref) (RawReaderAt, error) {
	info, err := driver.Stat(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &sequentialReaderAt{ctx: ctx, driver: driver, ref: ref, size: info.Size}, nil
}

type sequentialReaderAt struct {
	ctx    context.Context
	driver Driver
	ref    Ref
	size   int64

	mu  sync.Mutex // guards rc and pos; ReadAt calls take turns on one stream
	rc  io.ReadCloser
	pos int64 // offset of rc; -1 after a failed read: unknown
}

func (s *sequentialReaderAt) Size() int64 { return s.size }

func (s *sequentialReaderAt) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rc == nil || s.pos < 0 || off < s.pos {
		if err := s.reopen(); err != nil {
			return 0, err
		}
	}
	if _, err := io.CopyN(io.Discard, s.rc, off-s.pos); err != nil {
		s.pos = -1
		return 0, err
	}
	n, err := io.ReadFull(s.rc, p)
	s.pos = off + int64(n)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	} else if err != nil && err != io.EOF {
		s.pos = -1 // the stream broke: where it stands is unknown
	}
	return n, err
}

func (s *sequentialReaderAt) reopen() error {
	if s.rc != nil {
		s.rc.Close()
	}
	rc, err := s.driver.RawFetch(s.ctx, s.ref)
	if err != nil {
		s.rc = nil
		return err
	}
	s.rc, s.pos = rc, 0
	return nil
}

func (s *sequentialReaderAt) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rc == nil {
		return nil
	}
	err := s.rc.Close()
	s.rc = nil
	return err
}
