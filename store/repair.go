package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
)

// ErrNoGoodCopy: Repair found no other volume holding a copy that
// verifies, so the bad copy is left as it was.
var ErrNoGoodCopy = errors.New("no good copy on any volume")

// Repair replaces the damaged or missing copy of blob ref on volume bad
// with the stored bytes of a copy on another volume that verifies
// (without any key: size and CRC-32C, as a scrub checks), and returns the
// volume it copied from. The bad copy is checked again first: if it
// verifies now, Repair writes nothing and returns diskaccess.ErrCopyIntact.
// A source that does not check out on the way stores nothing, and the next
// volume is tried; when none has a good copy, the result is ErrNoGoodCopy
// (or, if a volume could not be tried, that error) and the bad copy is
// left as it was. The new copy is durable before Repair returns.
func (s *Store) Repair(ctx context.Context, ref blobstore.Ref, bad *badger.Volume) (*badger.Volume, error) {
	meta, err := s.meta.QueryBlobMetadata(ctx, ref, nil)
	if err != nil {
		return nil, err
	}
	var failure error // why a volume that may hold a good copy was no use
	for _, id := range meta.Volumes {
		if id == bad.ID || s.unavailable.get(id) != nil {
			continue
		}
		err := s.ctl.Repair(ctx, id, bad.ID, ref)
		switch {
		case err == nil:
			return s.meta.VolumeByID(ctx, id)
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, diskaccess.ErrCopyIntact):
			return nil, err
		case errors.Is(err, diskaccess.ErrCorrupt):
			continue // this copy is bad too
		}
		failure = fmt.Errorf("from volume %s: %w", s.VolumeName(ctx, id), err)
	}
	if failure != nil {
		return nil, failure
	}
	return nil, ErrNoGoodCopy
}

// repair tries to replace the copy that finding f (damaged or missing)
// names, and reports f with what came of it: f alone, saying why it is
// not repaired, or f followed by a Repaired finding.
func (sc *scrub) repair(f Finding) {
	from, err := sc.store.Repair(sc.ctx, f.Ref, sc.v)
	if errors.Is(err, ErrNoGoodCopy) {
		also, ferr := sc.store.RepairFromFrames(sc.ctx, f.Ref, sc.v)
		if ferr == nil {
			sc.report(f)
			sc.report(Finding{Kind: Repaired, Ref: f.Ref,
				Error: "no copy was whole: replaced with one assembled from the good frames of every copy" + alsoReplaced(also)})
			return
		}
		err = fmt.Errorf("%w; assembling one from the good frames of every copy: %w", err, ferr)
	}
	switch {
	case err == nil:
		sc.report(f)
		done := "damaged copy replaced"
		if f.Kind == Missing {
			done = "missing copy restored"
		}
		sc.report(Finding{Kind: Repaired, Ref: f.Ref, From: from.Label,
			Error: fmt.Sprintf("%s from volume %s", done, from.Label)})
	case errors.Is(err, diskaccess.ErrCopyIntact):
		sc.report(f)
		sc.report(Finding{Kind: Repaired, Ref: f.Ref, Error: "the copy verifies now (repaired meanwhile?): left as it was"})
	default:
		f.Error += "; not repaired: " + err.Error()
		sc.report(f)
	}
}

// RepairFromFrames replaces the damaged copy of blob ref on volume bad
// when no copy is whole (Repair found ErrNoGoodCopy): it is assembled
// frame by frame from every copy (diskaccess.Controller.RepairFromFrames),
// and then the other damaged copies are replaced with it. It returns the
// other volumes whose copies it replaced too.
func (s *Store) RepairFromFrames(ctx context.Context, ref blobstore.Ref, bad *badger.Volume) ([]*badger.Volume, error) {
	if err := s.ctl.RepairFromFrames(ctx, bad.ID, ref); err != nil {
		return nil, err
	}
	meta, err := s.meta.QueryBlobMetadata(ctx, ref, nil)
	if err != nil {
		return nil, err
	}
	var also []*badger.Volume
	for _, id := range meta.Volumes {
		if id == bad.ID || s.unavailable.get(id) != nil {
			continue
		}
		switch err := s.ctl.Repair(ctx, bad.ID, id, ref); {
		case err == nil:
			v, err := s.meta.VolumeByID(ctx, id)
			if err != nil {
				return also, err
			}
			also = append(also, v)
		case errors.Is(err, diskaccess.ErrCopyIntact):
		default:
			return also, fmt.Errorf("the copy on volume %s: %w", s.VolumeName(ctx, id), err)
		}
	}
	return also, nil
}
