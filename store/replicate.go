package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/badger"
)

// ReplicateOptions say what a replicate copies and whom it tells.
type ReplicateOptions struct {
	Refs     []blobstore.Ref // only these; none: every blob of the source
	ReadRate float64         // bytes per second read at most (0: no limit)
	Failed   func(Finding)   // each blob that could not be copied (nil: none)
	Reporter Reporter
}

// ReplicateSummary counts what a replicate did.
type ReplicateSummary struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Copied  int    `json:"copied"`
	Bytes   int64  `json:"bytes"`
	Present int    `json:"already_there"`
	Failed  int    `json:"failed"`
}

// Replicate copies the blobs of volume from that volume to lacks (or
// opts.Refs) as stored bytes, without any key: each is checked against
// its CRC-32C on the way and recorded only once durable. A damaged source
// blob is reported and not copied. A second run copies only what is
// missing. It returns ctx's error if cancelled; from and to must differ
// (ErrInvalid).
func (s *Store) Replicate(ctx context.Context, from, to *badger.Volume, opts ReplicateOptions) (ReplicateSummary, error) {
	summary := ReplicateSummary{From: from.Label, To: to.Label}
	if from.ID == to.ID {
		return summary, invalidf("--from and --to name the same volume")
	}
	ctx = limitReads(ctx, opts.ReadRate)
	refs := opts.Refs
	if len(refs) == 0 {
		err := s.meta.ListVolumeBlobs(ctx, from.ID, blobstore.Ref{}, func(ref blobstore.Ref) error {
			refs = append(refs, ref)
			return nil
		})
		if err != nil {
			return summary, err
		}
	}
	r := reporterOr(opts.Reporter)
	r.Begin("replicate", int64(len(refs)), 0)
	defer r.End()
	for _, ref := range refs {
		meta, err := s.meta.QueryBlobMetadata(ctx, ref, nil)
		if err == nil && slices.Contains(meta.Volumes, to.ID) {
			summary.Present++
			r.Add(1, 0)
			continue
		}
		if err == nil {
			err = s.ctl.Replicate(ctx, from.ID, to.ID, ref)
		}
		if ctx.Err() != nil {
			return summary, ctx.Err()
		}
		if err != nil {
			summary.Failed++
			if opts.Failed != nil {
				opts.Failed(Finding{Kind: NotCopied, Ref: ref, Volume: from.Label, Error: err.Error()})
			}
			r.Add(1, 0)
			continue
		}
		summary.Copied++
		summary.Bytes += meta.SizeOnDisk
		r.Add(1, meta.SizeOnDisk)
	}
	return summary, s.replicateNames(ctx, from, to)
}

// replicateNames copies to volume to the key envelopes, the names of the
// snapshots whose record blobs it now holds, and the explicit-store notes
// of the blobs it holds, so that it can rebuild the store on its own
// (recover). A name is written only after the
// blobs it points to are durable there: Replicate's copies are.
func (s *Store) replicateNames(ctx context.Context, from, to *badger.Volume) error {
	src, err := s.ctl.Driver(from.ID)
	if err != nil {
		return err
	}
	dst, err := s.ctl.Driver(to.ID)
	if err != nil {
		return err
	}
	if err := s.ensureKeys(ctx, to.ID); err != nil {
		return err
	}
	// Names never change (a forgotten snapshot's goes): one the target
	// has is not read or written again.
	there := map[string]bool{}
	err = dst.ListObjects(ctx, recordPrefix, func(o blobstore.ObjectInfo) error {
		there[o.Name] = true
		return nil
	})
	if err != nil {
		return err
	}
	var names []string
	err = src.ListObjects(ctx, recordPrefix, func(o blobstore.ObjectInfo) error {
		if !there[o.Name] {
			names = append(names, o.Name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range names {
		ref, err := readRecordRef(ctx, src, name)
		if err != nil {
			return err
		}
		meta, err := s.meta.QueryBlobMetadata(ctx, ref, nil)
		if err != nil || !slices.Contains(meta.Volumes, to.ID) {
			continue // the record is not there (yet): nor is its name
		}
		if err := dst.PutObject(ctx, name, strings.NewReader(ref.String()+"\n")); err != nil {
			return fmt.Errorf("volume %s: naming snapshot %s: %w", to.Label, name, err)
		}
	}
	if err := s.replicateNotes(ctx, src, dst, to.ID); err != nil { // explicit_notes.go
		return fmt.Errorf("volume %s: %w", to.Label, err)
	}
	return nil
}
