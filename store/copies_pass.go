package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
)

// PolicyOptions say what a ReplicateByPolicy looks at and whom it tells.
type PolicyOptions struct {
	// Refs: only these blobs (those recorded or given to files since the
	// last pass); none: every blob.
	Refs     []blobstore.Ref
	ReadRate float64       // bytes per second read at most (0: no limit)
	Failed   func(Finding) // each copy that could not be made (nil: none)
	// Copied is called after each copy made, with its volume (nil: none).
	Copied func(ref blobstore.Ref, to string, bytes int64)
	// Damaged is called with each damaged copy met that another copy
	// stood in for (a mount's Healer repairs it; nil: none).
	Damaged  func(diskaccess.Damage)
	Reporter Reporter
}

// PolicySummary counts what a ReplicateByPolicy did.
type PolicySummary struct {
	// Trivial: every policy is one copy on any volume, which every
	// recorded blob has: nothing was looked at.
	Trivial bool  `json:"nothing_to_do"`
	Checked int64 `json:"checked"`
	// Below: the blobs it found below their policy; Short: those of them
	// still below it when it ended.
	Below int64 `json:"below_policy"`
	Short int64 `json:"still_below"`
	// TooFew: those of Short whose policy asks for more copies than the
	// store has volumes it allows (the others are short for a copy that
	// failed, or a volume that is not available).
	TooFew int64          `json:"too_few_volumes"`
	Copied int            `json:"copied"`
	Bytes  int64          `json:"bytes"`
	Failed int            `json:"failed"`
	To     map[string]int `json:"to,omitempty"` // copies made, by volume
}

// policyBatch is how many blobs below policy a pass collects before it
// copies them, so that its memory is bounded however many there are (a
// variable for the tests).
var policyBatch = 4096

// policyWork is a blob below its policy.
type policyWork struct {
	ref     blobstore.Ref
	size    int64
	policy  *collectionPolicy
	volumes []int
}

// ReplicateByPolicy copies the blobs below their copies policy (every
// blob, or opts.Refs) to the volumes they lack, until each has the copies
// its policy asks for, as Replicate copies (stored bytes, verified on the
// way, recorded once durable). Targets are the volumes the policy allows,
// mounted and not yet holding the blob, in order of id; a target that
// fails is not used again in the pass; a source that is damaged or fails
// is reported and another copy used. Then each target gets what a
// recovery from it needs (keys, snapshot names, explicit-store notes:
// replicateNames). A blob that a garbage collection removed meanwhile is
// skipped. Resumable: a second pass copies only what is still missing.
func (s *Store) ReplicateByPolicy(ctx context.Context, opts PolicyOptions) (PolicySummary, error) {
	summary := PolicySummary{To: map[string]int{}}
	plan, err := s.copiesPlan(ctx)
	if err != nil {
		return summary, err
	}
	if plan.trivial() {
		summary.Trivial = true
		return summary, nil
	}
	ctx = limitReads(ctx, opts.ReadRate)
	r := reporterOr(opts.Reporter)
	r.Begin("replicate by policy", int64(len(opts.Refs)), 0)
	defer r.End()
	pass := &policyPass{s: s, plan: plan, opts: &opts, summary: &summary, r: r,
		badTarget: map[int]error{}, pairs: map[[2]int]bool{}}
	if opts.Refs != nil {
		err = pass.refs(ctx, opts.Refs)
	} else {
		err = pass.all(ctx)
	}
	if err != nil {
		return summary, err
	}
	return summary, pass.names(ctx)
}

// policyPass is one ReplicateByPolicy.
type policyPass struct {
	s         *Store
	plan      *copiesPlan
	opts      *PolicyOptions
	summary   *PolicySummary
	r         Reporter
	badTarget map[int]error   // targets that failed in this pass
	pairs     map[[2]int]bool // the (source, target) volumes copies went between
}

// all walks every blob record, copying in batches as it goes (the walk
// holds no read open while fn runs: EachBlobUse).
func (p *policyPass) all(ctx context.Context) error {
	var batch []policyWork
	err := p.s.meta.EachBlobUse(ctx, func(use badger.BlobUse) error {
		p.summary.Checked++
		p.r.Add(1, 0)
		if err := p.consider(ctx, &use, &batch); err != nil {
			return err
		}
		if len(batch) < policyBatch {
			return nil
		}
		err := p.copyAll(ctx, batch)
		batch = batch[:0]
		return err
	})
	if err != nil {
		return err
	}
	return p.copyAll(ctx, batch)
}

// refs looks at the given blobs.
func (p *policyPass) refs(ctx context.Context, refs []blobstore.Ref) error {
	var batch []policyWork
	for _, ref := range refs {
		meta, err := p.s.meta.QueryBlobMetadata(ctx, ref, nil)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed by a gc since
		}
		if err != nil {
			return err
		}
		p.summary.Checked++
		p.r.Add(1, 0)
		// Files: a file may use it (the pass looks only if a policy asks
		// for more copies than its key's).
		use := badger.BlobUse{Ref: ref, SizeOnDisk: meta.SizeOnDisk, Volumes: meta.Volumes, KeyID: meta.EncryptionKeyId, Files: true}
		if err := p.consider(ctx, &use, &batch); err != nil {
			return err
		}
		if len(batch) == policyBatch {
			if err := p.copyAll(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return p.copyAll(ctx, batch)
}

// consider adds use to batch if it is below its policy.
func (p *policyPass) consider(ctx context.Context, use *badger.BlobUse, batch *[]policyWork) error {
	policy, err := p.s.policyOf(ctx, p.plan, use)
	if err != nil {
		return err
	}
	if copiesHeld(policy, use.Volumes) >= policy.Copies {
		return nil
	}
	p.summary.Below++
	*batch = append(*batch, policyWork{ref: use.Ref, size: use.SizeOnDisk, policy: policy, volumes: slices.Clone(use.Volumes)})
	return nil
}

func (p *policyPass) copyAll(ctx context.Context, batch []policyWork) error {
	for i := range batch {
		if err := p.copy(ctx, &batch[i]); err != nil {
			return err
		}
	}
	return nil
}

// copy makes the copies blob w lacks, and counts it short if it still
// lacks some.
func (p *policyPass) copy(ctx context.Context, w *policyWork) error {
	held := copiesHeld(w.policy, w.volumes)
	failed := map[int]bool{} // sources that failed for this blob: not tried again
	for _, to := range p.targets(w) {
		if held >= w.policy.Copies {
			break
		}
		copied, gone, err := p.copyTo(ctx, w, to, failed)
		if err != nil || gone {
			return err
		}
		if copied {
			held++
			w.volumes = append(w.volumes, to)
		}
	}
	if held < w.policy.Copies {
		p.summary.Short++
		if p.plan.allowed(w.policy) < w.policy.Copies {
			p.summary.TooFew++
		}
	}
	return nil
}

// targets lists the volumes blob w may be copied to, in order of id.
func (p *policyPass) targets(w *policyWork) []int {
	var ids []int
	for _, v := range p.plan.volumes {
		allowed := len(w.policy.Volumes) == 0 || slices.Contains(w.policy.Volumes, v.ID)
		if allowed && !slices.Contains(w.volumes, v.ID) && p.badTarget[v.ID] == nil && p.available(v.ID) {
			ids = append(ids, v.ID)
		}
	}
	return ids
}

func (p *policyPass) available(volume int) bool {
	return p.s.Unavailable(volume) == nil && p.s.ctl.IsMounted(volume)
}

// copyTo copies blob w to volume to from the first of its copies that
// checks out, skipping the sources in failed and adding those that fail
// (damaged, or unreadable). gone: the blob is no longer recorded as it
// was (a gc removed it, or a copy of it). The error is only ctx's: a copy
// that fails is counted and reported, and a target that fails is not
// used again in the pass.
func (p *policyPass) copyTo(ctx context.Context, w *policyWork, to int, failed map[int]bool) (copied, gone bool, err error) {
	var damaged []diskaccess.Damage
	for _, from := range w.volumes {
		if failed[from] || !p.available(from) {
			continue
		}
		err := p.s.ctl.Replicate(ctx, from, to, w.ref)
		if ctx.Err() != nil {
			return false, false, ctx.Err()
		}
		var copyErr *diskaccess.CopyError
		var notOn *diskaccess.NotOnVolumeError
		switch {
		case err == nil:
			p.copied(ctx, w, from, to)
			for _, d := range damaged {
				if p.opts.Damaged != nil {
					d.ReadFrom = from
					p.opts.Damaged(d)
				}
			}
			return true, false, nil
		case errors.As(err, &copyErr) && copyErr.Source:
			p.fail(ctx, w.ref, from, err)
			failed[from] = true
		case errors.As(err, &copyErr):
			p.fail(ctx, w.ref, to, err)
			p.badTarget[to] = err
			return false, false, nil
		case errors.Is(err, diskaccess.ErrCorrupt):
			p.fail(ctx, w.ref, from, err)
			failed[from] = true
			damaged = append(damaged, diskaccess.Damage{Ref: w.ref, Volume: from, Err: err})
		case errors.As(err, &notOn), errors.Is(err, fs.ErrNotExist):
			// Its record changed since the walk (a gc removed a copy, or
			// the blob): the next pass looks again.
			return false, true, nil
		default:
			// Neither side's bytes: the target is not mounted, or the
			// metadata failed.
			p.fail(ctx, w.ref, to, err)
			p.badTarget[to] = err
			return false, false, nil
		}
	}
	return false, false, nil
}

func (p *policyPass) copied(ctx context.Context, w *policyWork, from, to int) {
	name := p.s.VolumeName(ctx, to)
	p.summary.Copied++
	p.summary.Bytes += w.size
	p.summary.To[name]++
	p.pairs[[2]int{from, to}] = true
	p.r.Add(0, w.size)
	if p.opts.Copied != nil {
		p.opts.Copied(w.ref, name, w.size)
	}
}

func (p *policyPass) fail(ctx context.Context, ref blobstore.Ref, volume int, err error) {
	p.summary.Failed++
	if p.opts.Failed != nil {
		p.opts.Failed(Finding{Kind: NotCopied, Ref: ref, Volume: p.s.VolumeName(ctx, volume), Error: err.Error()})
	}
}

// names gives every target what a recovery from it needs.
func (p *policyPass) names(ctx context.Context) error {
	byID := map[int]*badger.Volume{}
	for _, v := range p.plan.volumes {
		byID[v.ID] = v
	}
	var errs []error
	for pair := range p.pairs {
		if err := p.s.replicateNames(ctx, byID[pair[0]], byID[pair[1]]); err != nil {
			errs = append(errs, fmt.Errorf("replicate by policy: %w", err))
		}
	}
	return errors.Join(errs...)
}
