package fusefs

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"syscall"

	"github.com/stofuse/stofuse/blobstore"
)

// blobStream feeds the writes of a file whose ref is known (a hex name) to
// WriteBlob as they arrive, so that sealing and storing overlap with the
// copy instead of starting at close, and nothing is spooled. WriteBlob
// checks the content against the ref at the end: a mismatch stores
// nothing. Gaps (sparse copies, a final ftruncate) are streamed as zeros;
// a write before what was streamed already cannot be taken back, and fails
// the file.
type blobStream struct {
	queue  *streamQueue
	offset int64         // bytes streamed so far
	size   int64         // the file's size: offset, or more after a truncate
	done   chan struct{} // closed when WriteBlob has returned
	err    error         // WriteBlob's result, once done is closed
}

// errOutOfOrder: a write before the part of the file already stored.
var errOutOfOrder = errors.New("a file named by its hash is stored as it is written, from start to end; " +
	"this write goes back to an offset already stored (write it under another name, then rename it)")

// errStreamAbandoned stops a stream whose file was thrown away.
var errStreamAbandoned = errors.New("stream abandoned")

func startStream(f *FS, ref blobstore.Ref) *blobStream {
	s := &blobStream{queue: newStreamQueue(streamQueueBytes), done: make(chan struct{})}
	cfg := f.cfg
	go func() {
		defer close(s.done)
		s.err = cfg.Controller.WriteBlob(context.Background(), cfg.Volume, cfg.Collection, ref, s.queue, true)
		s.queue.closeRead(errStreamAbandoned) // unblock a writer if WriteBlob stopped early
	}()
	return s
}

// cause turns a failed queue write into why it failed: WriteBlob's error
// (ENOSPC, say) if it stopped.
func (s *blobStream) cause(err error) error {
	if errors.Is(err, errStreamAbandoned) {
		<-s.done
		if s.err != nil {
			return s.err
		}
	}
	return err
}

// writeAt streams data written at off.
func (s *blobStream) writeAt(data []byte, off int64) error {
	if off < s.offset {
		return errOutOfOrder
	}
	if err := s.zeros(off - s.offset); err != nil {
		return err
	}
	n, err := s.queue.Write(data)
	s.offset += int64(n)
	s.size = max(s.size, s.offset)
	return s.cause(err)
}

// truncate sets the file's size; it may not cut what was streamed.
func (s *blobStream) truncate(size int64) error {
	if size < s.offset {
		return errOutOfOrder
	}
	s.size = size
	return nil
}

var zeroBlock = make([]byte, 1<<17)

func (s *blobStream) zeros(n int64) error {
	for n > 0 {
		chunk := zeroBlock[:min(n, int64(len(zeroBlock)))]
		written, err := s.queue.Write(chunk)
		s.offset += int64(written)
		n -= int64(written)
		if err != nil {
			return s.cause(err)
		}
	}
	return nil
}

// finish streams the zeros up to the file's size, ends the stream and
// returns WriteBlob's result.
func (s *blobStream) finish() error {
	if err := s.zeros(s.size - s.offset); err != nil {
		s.abandon()
		return err
	}
	s.queue.closeWrite(io.EOF)
	<-s.done
	return s.err
}

// abandon stops the stream; nothing is stored.
func (s *blobStream) abandon() {
	s.queue.closeWrite(errStreamAbandoned)
	<-s.done
}

// hashCheck follows a rewrite of a committed blob: nothing needs storing,
// only checking that the same content was written, in order.
type hashCheck struct {
	hash hash.Hash
	size int64
}

func newHashCheck() *hashCheck { return &hashCheck{hash: sha256.New()} }

var errBlobNeverChanges = fmt.Errorf("a committed blob never changes: %w", syscall.EPERM)

func (c *hashCheck) writeAt(data []byte, off int64) error {
	if off != c.size {
		return fmt.Errorf("%w (writes out of order)", errBlobNeverChanges)
	}
	c.hash.Write(data)
	c.size += int64(len(data))
	return nil
}

func (c *hashCheck) matches(ref blobstore.Ref) bool {
	return blobstore.Ref(c.hash.Sum(nil)) == ref
}
