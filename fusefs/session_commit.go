package fusefs

import (
	"context"
	"errors"
	"fmt"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// commit stores the content if it changed since the last commit, and
// returns its ref and the metadata of the blob stored (nil when nothing
// was: the content had not changed, a rewrite matched its blob, or the
// content goes nowhere). A spool is checked against the name, if the name
// says a ref, and stored in the owner's collection; a stream is finished
// (the store checks it against its ref); a rewrite is compared with its
// blob (EPERM if it differs). record records what was stored before the
// session counts it stored.
//
// On failure nothing is counted stored: a spool stays as it was, to be
// committed again; a stream, which cannot be, and a rewrite that does not
// match fail the session. A failed session returns its error again. The
// caller holds the content lock.
func (s *session) commit(ctx context.Context, record recorder) (blobstore.Ref, *diskaccess.BlobMeta, error) {
	switch s.state {
	case failed:
		return blobstore.Ref{}, nil, s.err
	case spooling:
		return s.commitSpool(ctx, record)
	case streaming:
		return s.commitStream(ctx, record)
	case checking:
		if !s.check.matches(s.blob) {
			return s.blob, nil, s.fail(errBlobNeverChanges)
		}
		s.storedAs(s.blob)
	case empty, stored, discarded: // nothing changed since: the content is blob
	}
	return s.blob, nil, nil
}

func (s *session) commitSpool(ctx context.Context, record recorder) (blobstore.Ref, *diskaccess.BlobMeta, error) {
	ref, err := s.spool.Ref()
	if err != nil {
		return ref, nil, err
	}
	if want, named := s.owner.named(); named && want != ref {
		return ref, nil, fmt.Errorf("%w (it hashes to %s)", errNotThisRef, ref)
	}
	collection := s.owner.collection()
	if collection == "" {
		s.storedAs(s.blob) // nowhere to go: clean, and nothing stored
		return ref, nil, nil
	}
	size := s.spool.Size()
	meta, err := s.fsys.storeContent(ctx, collection, ref, s.spool, record.recordFunc(ref, size))
	if err != nil {
		return ref, nil, err
	}
	if record.after != nil {
		if err := record.after(ref, size, meta); err != nil {
			return ref, nil, err
		}
	}
	s.storedAs(ref)
	return ref, meta, nil
}

// commitStream finishes a stream that carried the whole content; the
// store checks the content against the ref.
func (s *session) commitStream(ctx context.Context, record recorder) (blobstore.Ref, *diskaccess.BlobMeta, error) {
	stream := s.stream
	s.stream = nil // finished, whatever happens
	meta, err := stream.finish(ctx, record.recordFunc(stream.ref, stream.size))
	if errors.Is(err, diskaccess.ErrRefMismatch) {
		err = fmt.Errorf("%w (%v)", errNotThisRef, err)
	}
	if err == nil && record.after != nil {
		err = record.after(stream.ref, stream.size, meta)
	}
	if err != nil {
		return stream.ref, nil, s.fail(err)
	}
	s.storedAs(stream.ref)
	return stream.ref, meta, nil
}

// storedAs counts the content stored as blob ref; the caller holds the
// content lock.
func (s *session) storedAs(ref blobstore.Ref) {
	s.attrs.Lock()
	defer s.attrs.Unlock()
	s.storedLocked(ref)
}

// storedLocked is storedAs for a caller holding both locks: a record
// function may count the content stored in the critical section that
// changes the owner's own record, so that the two change together.
func (s *session) storedLocked(ref blobstore.Ref) {
	s.state, s.blob, s.err = stored, ref, nil
}
