package fusefs

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"syscall"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// blobStream feeds the writes of a file whose ref is known (a hex name) to
// a diskaccess.BlobWriter as they arrive, so that sealing and storing
// overlap with the copy instead of starting at close, and nothing is
// spooled. The content is checked against the ref at the end: a mismatch
// stores nothing. Gaps (sparse copies, a final ftruncate) are streamed as
// zeros; a write before what was streamed already cannot be taken back,
// and fails the file.
type blobStream struct {
	ref    blobstore.Ref // what the content must hash to
	w      *diskaccess.BlobWriter
	offset int64 // bytes streamed so far
	size   int64 // the file's size: offset, or more after a truncate
}

// errOutOfOrder: a write before the part of the file already stored.
var errOutOfOrder = errors.New("a file named by its hash is stored as it is written, from start to end; " +
	"this write goes back to an offset already stored (write it under another name, then rename it)")

// startStream starts a stream of blob ref of collection.
func startStream(ctx context.Context, f *FS, collection string, ref blobstore.Ref) (*blobStream, error) {
	cfg := f.cfg
	w, err := cfg.Controller.NewBlobWriter(ctx, cfg.Volume, collection, ref, diskaccess.WriteOptions{MaybeCompressible: true})
	if err != nil {
		return nil, err
	}
	return &blobStream{ref: ref, w: w}, nil
}

// writeAt streams data written at off.
func (s *blobStream) writeAt(data []byte, off int64) error {
	if off < s.offset {
		return errOutOfOrder
	}
	if err := s.zeros(off - s.offset); err != nil {
		return err
	}
	n, err := s.w.Write(data)
	s.offset += int64(n)
	s.size = max(s.size, s.offset)
	return err
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
		written, err := s.w.Write(chunk)
		s.offset += int64(written)
		n -= int64(written)
		if err != nil {
			return err
		}
	}
	return nil
}

// finish streams the zeros up to the file's size and commits the blob,
// recorded by record (nil: the store records it; see
// diskaccess.BlobWriter.CommitWith).
func (s *blobStream) finish(ctx context.Context, record diskaccess.RecordFunc) (*diskaccess.BlobMeta, error) {
	if err := s.zeros(s.size - s.offset); err != nil {
		s.abandon()
		return nil, err
	}
	return s.w.CommitWith(ctx, record)
}

// abandon stops the stream; nothing is stored.
func (s *blobStream) abandon() { s.w.Abort() }

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
