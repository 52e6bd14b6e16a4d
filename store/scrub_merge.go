package store

import (
	"context"
	"errors"
	"iter"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// all checks every blob the metadata lists on the volume after the
// state's position, and walks the volume's own listing alongside (both
// are in ref order) to find the files the metadata does not know.
func (sc *scrub) all() error {
	driver, err := openDriver(sc.ctx, sc.v)
	if err != nil {
		return err
	}
	var listErr error
	stored, stop := iter.Pull2(listStored(sc.ctx, driver, &listErr))
	defer stop()
	after := sc.state.Position
	nextStored, storedSize, more := stored()
	for more && !after.IsZero() && nextStored.Compare(after) <= 0 {
		nextStored, storedSize, more = stored() // checked before the interruption
	}
	orphansBefore := func(ref blobstore.Ref, all bool) {
		for more && (all || nextStored.Compare(ref) < 0) {
			if !diskaccess.IsVolumeDescriptor(nextStored) && !sc.condemned(nextStored) {
				sc.report(Finding{Kind: Orphan, Ref: nextStored, Size: storedSize,
					Error: "stored, but not in the metadata (left by an interrupted write?)"})
			}
			nextStored, storedSize, more = stored()
		}
	}
	err = sc.store.meta.ListVolumeBlobs(sc.ctx, sc.v.ID, after, func(ref blobstore.Ref) error {
		orphansBefore(ref, false)
		if more && nextStored == ref {
			nextStored, storedSize, more = stored()
		}
		sc.check(ref)
		return nil
	})
	if err != nil {
		return err
	}
	orphansBefore(blobstore.Ref{}, true)
	return listErr
}

// condemned reports whether a stored blob the metadata does not list is
// one a garbage collection condemned and has not removed yet (Open
// removes them, but not from a volume it could not mount): garbage on
// its way out, not an orphan.
func (sc *scrub) condemned(ref blobstore.Ref) bool {
	found, err := sc.store.meta.IsCondemned(sc.ctx, sc.v.ID, ref)
	return err == nil && found
}

// listStored adapts a driver's List to an iterator; a listing error is
// left in *errp.
func listStored(ctx context.Context, driver blobstore.Driver, errp *error) iter.Seq2[blobstore.Ref, int64] {
	return func(yield func(blobstore.Ref, int64) bool) {
		stopped := errors.New("stopped")
		err := driver.List(ctx, func(info blobstore.BlobInfo) error {
			if !yield(info.Ref, info.Size) {
				return stopped
			}
			return nil
		})
		if err != nil && err != stopped {
			*errp = err
		}
	}
}
