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

// The copies policy. Each collection keeps every blob it uses on a number
// of volumes (its own policy, or the store's: one copy unless set), on
// any volumes or only on those it names. A blob belongs to the collection
// whose data key seals it, and to every collection one of whose files
// uses it: it follows the largest number of copies among them (and that
// policy's volumes). A copy counts when the metadata records it (every
// recorded copy was verified when it was made) on a volume the policy
// allows. ReplicateByPolicy makes the copies that are missing; a mount's
// daemon runs it in the background (Replicator); CopiesStatus counts what
// is below policy.

// copiesPlan is the policies of a store's collections, as one pass of
// ReplicateByPolicy or CopiesStatus reads them once at its start.
type copiesPlan struct {
	def         collectionPolicy
	collections []*collectionPolicy
	byKey       map[string]*collectionPolicy // by data key id
	byFolder    map[uint64]*collectionPolicy // by folder inode
	folders     map[uint64]bool
	dirFolder   map[uint64]uint64 // the folder of each directory met (FileFolders' cache)
	most        int               // the largest number of copies of any policy
	volumes     []*badger.Volume  // every registered volume, by id
}

// collectionPolicy is the policy a collection follows.
type collectionPolicy struct {
	name string // "": blobs of no collection, which follow the store's policy
	badger.CopiesPolicy
	own bool // the collection's own policy (else the store's)
}

func (s *Store) copiesPlan(ctx context.Context) (*copiesPlan, error) {
	def, err := s.meta.DefaultCopies(ctx)
	if err != nil {
		return nil, err
	}
	collections, err := s.meta.Collections(ctx)
	if err != nil {
		return nil, err
	}
	volumes, err := s.meta.Volumes(ctx)
	if err != nil {
		return nil, err
	}
	p := &copiesPlan{def: collectionPolicy{CopiesPolicy: def}, byKey: map[string]*collectionPolicy{},
		byFolder: map[uint64]*collectionPolicy{}, folders: map[uint64]bool{}, dirFolder: map[uint64]uint64{},
		most: def.Copies, volumes: volumes}
	for _, c := range collections {
		cp := &collectionPolicy{name: c.Name, CopiesPolicy: def}
		if c.Copies != nil {
			cp.CopiesPolicy, cp.own = *c.Copies, true
		}
		p.collections = append(p.collections, cp)
		p.byKey[c.KeyID] = cp
		if c.FolderIno != 0 {
			p.byFolder[c.FolderIno] = cp
			p.folders[c.FolderIno] = true
		}
		p.most = max(p.most, cp.Copies)
	}
	return p, nil
}

// trivial reports whether every policy is one copy on any volume, which
// every recorded blob has: nothing can be below it, and nothing need be
// walked.
func (p *copiesPlan) trivial() bool {
	if p.most > 1 || len(p.def.Volumes) > 0 {
		return false
	}
	for _, c := range p.collections {
		if len(c.Volumes) > 0 {
			return false
		}
	}
	return true
}

// policyOf is the policy blob use follows: its key's collection's, or
// that of a collection one of whose files uses it, whichever asks for
// more copies.
func (s *Store) policyOf(ctx context.Context, p *copiesPlan, use *badger.BlobUse) (*collectionPolicy, error) {
	policy := p.byKey[use.KeyID]
	if policy == nil {
		policy = &p.def
	}
	if !use.Files || policy.Copies >= p.most {
		return policy, nil
	}
	err := s.meta.FileFolders(ctx, use.Ref, p.folders, p.dirFolder, func(folder uint64) error {
		if other := p.byFolder[folder]; other != nil && other.Copies > policy.Copies {
			policy = other
		}
		return nil
	})
	return policy, err
}

// copiesHeld counts the copies in volumes that policy counts.
func copiesHeld(policy *collectionPolicy, volumes []int) int {
	if len(policy.Volumes) == 0 {
		return len(volumes)
	}
	n := 0
	for _, v := range volumes {
		if slices.Contains(policy.Volumes, v) {
			n++
		}
	}
	return n
}

// CopiesStatus is how many blobs are below their copies policy.
type CopiesStatus struct {
	Default badger.CopiesPolicy `json:"default"`
	// Walked: the blob records were walked to count. They are not while
	// every policy is one copy on any volume (nothing is below it): Blobs
	// and the collections' counts are then 0.
	Walked      bool               `json:"walked"`
	Blobs       int64              `json:"blobs"`
	Below       int64              `json:"below_policy"`
	Collections []CollectionCopies `json:"collections"`
	Volumes     []VolumeCopies     `json:"volumes"`
}

// CollectionCopies counts one collection's blobs (those its policy
// decides) and those of them below it.
type CollectionCopies struct {
	Name   string              `json:"name"` // "": blobs of no collection
	Policy badger.CopiesPolicy `json:"policy"`
	Own    bool                `json:"own_policy"` // false: the store's
	Blobs  int64               `json:"blobs"`
	Below  int64               `json:"below_policy"`
}

// VolumeCopies counts the blobs a volume holds that are below their
// policy (copies of them are still to be made from somewhere).
type VolumeCopies struct {
	Volume string `json:"volume"`
	Below  int64  `json:"below_policy"`
}

// CopiesStatus counts the blobs below their copies policy, per collection
// and per volume, in one walk of the blob records.
func (s *Store) CopiesStatus(ctx context.Context) (*CopiesStatus, error) {
	plan, err := s.copiesPlan(ctx)
	if err != nil {
		return nil, err
	}
	counts := map[*collectionPolicy]*CollectionCopies{}
	count := func(p *collectionPolicy) *CollectionCopies {
		if counts[p] == nil {
			counts[p] = &CollectionCopies{Name: p.name, Policy: p.CopiesPolicy, Own: p.own}
		}
		return counts[p]
	}
	for _, c := range plan.collections {
		count(c)
	}
	byVolume := map[int]int64{}
	status := &CopiesStatus{Default: plan.def.CopiesPolicy, Walked: !plan.trivial()}
	err = s.meta.EachBlobUse(ctx, func(use badger.BlobUse) error {
		if !status.Walked {
			return errBatchFull // stop at once
		}
		policy, err := s.policyOf(ctx, plan, &use)
		if err != nil {
			return err
		}
		c := count(policy)
		c.Blobs++
		status.Blobs++
		if copiesHeld(policy, use.Volumes) < policy.Copies {
			c.Below++
			status.Below++
			for _, v := range use.Volumes {
				byVolume[v]++
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errBatchFull) {
		return nil, err
	}
	for _, c := range plan.collections {
		status.Collections = append(status.Collections, *counts[c])
	}
	if c := counts[&plan.def]; c != nil {
		status.Collections = append(status.Collections, *c)
	}
	for _, v := range plan.volumes {
		status.Volumes = append(status.Volumes, VolumeCopies{Volume: v.Label, Below: byVolume[v.ID]})
	}
	return status, nil
}

// PolicyOptions say what a ReplicateByPolicy looks at and whom it tells.
type PolicyOptions struct {
	// Refs: only these blobs (those recorded or given to files since the
	// last pass); none: every blob.
	Refs     []blobstore.Ref
	ReadRate float64       // bytes per second read at most (0: no limit)
	Failed   func(Finding) // each copy that could not be made (nil: none)
	// Copied is called after each copy made, with its volume (nil: none).
	Copied   func(ref blobstore.Ref, to string, bytes int64)
	Reporter Reporter
}

// PolicySummary counts what a ReplicateByPolicy did.
type PolicySummary struct {
	Checked int64 `json:"checked"`
	// Below: the blobs it found below their policy; Short: those of them
	// still below it when it ended (too few volumes the policy allows are
	// available, or copies failed).
	Below int64 `json:"below_policy"`
	Short int64 `json:"still_below"`
	// TooFew: those of Short that no copy failed for: fewer volumes than
	// their policy's copies are allowed, mounted and not failing.
	TooFew int64          `json:"too_few_volumes"`
	Copied int            `json:"copied"`
	Bytes  int64          `json:"bytes"`
	Failed int            `json:"failed"`
	To     map[string]int `json:"to,omitempty"` // copies made, by volume
}

// policyBatch is how many blobs below policy a pass collects before it
// copies them, so that its memory is bounded however many there are.
const policyBatch = 4096

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
// fails is not used again in the pass; a damaged source is reported and
// another copy used. Then each target gets what a recovery from it needs
// (keys, snapshot names, explicit-store notes: replicateNames). A blob
// that a garbage collection removed meanwhile is skipped. Resumable: a
// second pass copies only what is still missing.
func (s *Store) ReplicateByPolicy(ctx context.Context, opts PolicyOptions) (PolicySummary, error) {
	summary := PolicySummary{To: map[string]int{}}
	plan, err := s.copiesPlan(ctx)
	if err != nil {
		return summary, err
	}
	ctx = limitReads(ctx, opts.ReadRate)
	r := reporterOr(opts.Reporter)
	r.Begin("replicate by policy", int64(len(opts.Refs)), 0)
	defer r.End()
	pass := &policyPass{s: s, plan: plan, opts: &opts, summary: &summary, r: r,
		badTarget: map[int]error{}, pairs: map[[2]int]bool{}}
	if plan.trivial() {
		return summary, nil // every recorded blob has one copy
	}
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

// all walks every blob record, in batches.
func (p *policyPass) all(ctx context.Context) error {
	var from blobstore.Ref
	for {
		var batch []policyWork
		var next blobstore.Ref
		more := false
		err := p.s.meta.EachBlobUseFrom(ctx, from, func(use badger.BlobUse) error {
			if len(batch) == policyBatch {
				next, more = use.Ref, true
				return errBatchFull
			}
			p.summary.Checked++
			p.r.Add(1, 0)
			return p.consider(ctx, &use, &batch)
		})
		if err != nil && !errors.Is(err, errBatchFull) {
			return err
		}
		if err := p.copyAll(ctx, batch); err != nil {
			return err
		}
		if !more {
			return nil
		}
		from = next
	}
}

var errBatchFull = errors.New("batch full")

// refs looks at the given blobs, with their keys' policies.
func (p *policyPass) refs(ctx context.Context, refs []blobstore.Ref) error {
	var batch []policyWork
	for _, ref := range refs {
		meta, err := p.s.meta.QueryBlobMetadata(ctx, ref, nil)
		if errors.Is(err, fs.ErrNotExist) {
			continue // not recorded after all, or removed by a gc since
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
	held, failed := copiesHeld(w.policy, w.volumes), p.summary.Failed
	for _, to := range p.targets(w) {
		if held >= w.policy.Copies {
			break
		}
		copied, gone, err := p.copyTo(ctx, w, to)
		if err != nil {
			return err
		}
		if gone {
			return nil
		}
		if copied {
			held++
			w.volumes = append(w.volumes, to)
		}
	}
	if held < w.policy.Copies {
		p.summary.Short++
		if p.summary.Failed == failed {
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
		if allowed && !slices.Contains(w.volumes, v.ID) && p.badTarget[v.ID] == nil &&
			p.s.Unavailable(v.ID) == nil && p.s.ctl.IsMounted(v.ID) {
			ids = append(ids, v.ID)
		}
	}
	return ids
}

// copyTo copies blob w to volume to from the first of its copies that
// checks out. gone: the blob is no longer recorded (a gc removed it). An
// error is only ctx's: a copy that fails is counted and reported, and a
// target that fails is not used again in the pass.
func (p *policyPass) copyTo(ctx context.Context, w *policyWork, to int) (copied, gone bool, err error) {
	for _, from := range w.volumes {
		if p.s.Unavailable(from) != nil || !p.s.ctl.IsMounted(from) {
			continue
		}
		err := p.s.ctl.Replicate(ctx, from, to, w.ref)
		if ctx.Err() != nil {
			return false, false, ctx.Err()
		}
		var notOn *diskaccess.NotOnVolumeError
		switch {
		case err == nil:
			name := p.s.VolumeName(ctx, to)
			p.summary.Copied++
			p.summary.Bytes += w.size
			p.summary.To[name]++
			if p.opts.Copied != nil {
				p.opts.Copied(w.ref, name, w.size)
			}
			p.pairs[[2]int{from, to}] = true
			p.r.Add(0, w.size)
			return true, false, nil
		case errors.Is(err, fs.ErrNotExist) && !errors.Is(err, diskaccess.ErrCorrupt):
			return false, true, nil // a gc removed its record
		case errors.As(err, &notOn):
			return false, true, nil // its copies changed since the walk: the next pass looks again
		case errors.Is(err, diskaccess.ErrCorrupt):
			p.fail(ctx, w.ref, from, err) // try the next copy
		default:
			// Not the source's fault: the target's (full, gone).
			p.fail(ctx, w.ref, to, err)
			p.badTarget[to] = err
			return false, false, nil
		}
	}
	return false, false, nil
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
