package store

import (
	"context"
	"slices"

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
	return summary, nil
}
