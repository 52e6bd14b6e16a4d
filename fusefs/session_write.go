package fusefs

import (
	"context"
	"fmt"
	"io"
	"syscall"
)

// write writes data at off; the caller holds the content lock.
func (s *session) write(ctx context.Context, data []byte, off int64) (int, error) {
	switch {
	case s.state == failed:
		return 0, s.err
	case s.storedByStream():
		return 0, s.fail(fmt.Errorf("it was stored when it was closed: %w", errBlobNeverChanges))
	case s.state == discarded:
		s.startOver()
	}
	if s.rule == mustMatch {
		return s.writeCheck(data, off)
	}
	if s.state != streaming {
		if err := s.copyOnWrite(ctx); err != nil {
			return 0, err
		}
		if err := s.streamFrom(ctx, off); err != nil {
			return 0, err
		}
	}
	if s.state == streaming {
		return s.writeStream(data, off)
	}
	written, err := s.spool.WriteAt(data, off)
	s.set(spooling, s.spool.Size())
	return written, err
}

// streamFrom starts streaming the content if it can be: an empty spool,
// written from its start, under a name that says its ref. The caller
// holds the content lock.
func (s *session) streamFrom(ctx context.Context, off int64) error {
	ref, named := s.owner.named()
	if !named || off != 0 || s.spool.Size() != 0 {
		return nil
	}
	stream, err := startStream(ctx, s.fsys, s.owner.collection(), ref)
	switch {
	case err != nil && ctx.Err() != nil:
		return err // interrupted: the write is retried
	case err != nil:
		// Sticks, as a stream's failures do: the close then fails with
		// it and the name leaves at once (the disk is full when the blob
		// is staged).
		return s.fail(err)
	}
	s.stream = stream
	s.replaceSpool(nil)
	s.set(streaming, 0)
	return nil
}

// writeStream feeds a write to the stream: one it cannot take (out of
// order, the disk full) fails the content.
func (s *session) writeStream(data []byte, off int64) (int, error) {
	if err := s.stream.writeAt(data, off); err != nil {
		return 0, s.fail(err)
	}
	s.set(streaming, s.stream.size)
	return len(data), nil
}

// writeCheck hashes a rewrite's write; one out of order fails it.
func (s *session) writeCheck(data []byte, off int64) (int, error) {
	if s.check == nil {
		s.check = newHashCheck()
	}
	err := s.check.writeAt(data, off)
	s.set(checking, s.check.size)
	return len(data), s.fail(err)
}

// copyOnWrite gives an empty session a spool holding its blob, copied in
// bounded memory; the session stays empty (unchanged) until the change
// that needed the copy. The caller holds the content lock.
func (s *session) copyOnWrite(ctx context.Context) error {
	if s.spool != nil {
		return nil
	}
	spool := newContentBuffer(&s.fsys.cfg)
	if !s.blob.IsZero() && s.size > 0 {
		cfg := s.fsys.cfg
		blob, err := cfg.Controller.OpenBlobAnyCopy(ctx, s.blob, cfg.Keys, cfg.Volume)
		if err != nil {
			spool.Close()
			return err
		}
		_, err = io.Copy(&appender{spool}, io.NewSectionReader(blob, 0, blob.Size()))
		blob.Close()
		if err != nil {
			spool.Close()
			return err
		}
	}
	s.replaceSpool(spool)
	return nil
}

// appender turns WriteAt into Write.
type appender struct{ c *contentBuffer }

func (a *appender) Write(p []byte) (int, error) { return a.c.WriteAt(p, a.c.Size()) }

// truncate sets the content's size. Truncating to 0 starts the content
// over, also after a failure (a retry with O_TRUNC); a content stored by
// its stream can only be left at its size or emptied. The caller holds the
// content lock.
func (s *session) truncate(ctx context.Context, size int64) error {
	switch {
	case s.storedByStream() && size == s.size:
		return nil // left as it is
	case size == 0:
		s.startOver()
		return nil
	case s.state == failed:
		return s.err
	case s.state == discarded:
		s.startOver()
	}
	switch {
	case s.rule == mustMatch:
		return s.truncateCheck(size)
	case s.state == streaming:
		err := s.stream.truncate(size)
		s.set(streaming, s.stream.size)
		return s.fail(err)
	case s.storedByStream():
		return s.fail(errBlobNeverChanges)
	}
	if err := s.copyOnWrite(ctx); err != nil {
		return err
	}
	if err := s.spool.Truncate(size); err != nil {
		return err
	}
	s.set(spooling, s.spool.Size())
	return nil
}

// truncateCheck: a rewrite may only be cut to what it has written.
func (s *session) truncateCheck(size int64) error {
	if s.check == nil {
		s.check = newHashCheck()
	}
	s.set(checking, s.check.size)
	if size != s.check.size {
		return errBlobNeverChanges
	}
	return nil
}

// startOver empties the content: a rewrite's hash starts again, other
// content gets a new, empty spool. The caller holds the content lock.
func (s *session) startOver() {
	s.abandon()
	if s.rule == mustMatch {
		s.check = newHashCheck()
		s.set(checking, 0)
		return
	}
	s.replaceSpool(newContentBuffer(&s.fsys.cfg))
	s.set(spooling, 0)
}

// read reads the content at off: from the spool under the content lock
// (so it waits for a write or commit in progress), else from the blob with
// no lock held. Content being streamed, or failed with no spool, cannot be
// read back (EIO). The caller holds neither lock.
func (s *session) read(ctx context.Context, dest []byte, off int64) (int, error) {
	if n, spooled, err := s.readSpool(dest, off); spooled {
		return n, err
	}
	s.attrs.Lock()
	state, blob := s.state, s.blob
	s.attrs.Unlock()
	switch {
	case state == streaming || state == failed:
		return 0, fmt.Errorf("it is stored as it is written and cannot be read back before it is closed: %w", syscall.EIO)
	case blob.IsZero():
		return 0, nil
	}
	cfg := s.fsys.cfg
	reader, err := cfg.Controller.OpenBlobAnyCopy(ctx, blob, cfg.Keys, cfg.Volume)
	if err != nil {
		return 0, err
	}
	defer reader.Close()
	return readAll(reader, dest, off)
}

// readSpool reads the spool, if the content is in one.
func (s *session) readSpool(dest []byte, off int64) (n int, spooled bool, err error) {
	s.attrs.Lock()
	spooled = s.spool != nil
	s.attrs.Unlock()
	if !spooled {
		return 0, false, nil
	}
	s.content.Lock()
	defer s.content.Unlock()
	if s.spool == nil { // streamed or discarded meanwhile
		return 0, false, nil
	}
	n, err = readAll(s.spool, dest, off)
	return n, true, err
}

// readAll is ReadAt with io.EOF (a read at or past the end) as no error.
func readAll(r io.ReaderAt, dest []byte, off int64) (int, error) {
	got, err := r.ReadAt(dest, off)
	if err == io.EOF {
		err = nil
	}
	return got, err
}
