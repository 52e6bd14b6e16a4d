package store

import (
	"context"
	"sync"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// Replicator keeps a store's blobs at their copies policy in the
// background, for a mount's daemon: a whole pass of ReplicateByPolicy
// when it starts (what an earlier mount, killed or not, left below
// policy), then a pass over the blobs recorded (or that a file started
// to use) since the last one, a moment after they are, and a whole pass
// again every ReplicatorFullEvery (for a volume that came back) and when
// Rescan asks (a policy changed).
type Replicator struct {
	logf     func(format string, args ...any)
	readRate float64
	damaged  func(diskaccess.Damage) // damaged copies met and read around (nil: none)

	mu      sync.Mutex // guards pending, whole, state
	pending map[blobstore.Ref]struct{}
	whole   bool // the next pass is a whole one: Rescan, or more were noted than pending holds
	state   ReplicatorState
	wake    chan struct{}
}

// ReplicatorState is what the background replication did last.
type ReplicatorState struct {
	Passes   int           `json:"passes"`
	Copied   int           `json:"copied"` // since the mount
	Bytes    int64         `json:"bytes"`
	Failed   int           `json:"failed"`
	LastPass time.Time     `json:"last_pass,omitzero"`
	Last     PolicySummary `json:"last"`
	Running  bool          `json:"running"`
}

// ReplicatorFullEvery is how often the background replication looks at
// every blob.
const ReplicatorFullEvery = 15 * time.Minute

// replicatorDelay is how long new blobs wait before they are copied, so
// that the blobs of a copy in progress go in one pass.
const replicatorDelay = time.Second

// maxPending bounds the refs noted between passes; beyond it the next
// pass is a whole one.
const maxPending = 100_000

// NewReplicator makes a background replication reading at most readRate
// bytes per second (0: no limit), logging what it does with logf, and
// reporting to damaged (if not nil) each damaged copy it met and read
// around (a Healer's Report).
func NewReplicator(logf func(string, ...any), readRate float64, damaged func(diskaccess.Damage)) *Replicator {
	return &Replicator{logf: logf, readRate: readRate, damaged: damaged, pending: map[blobstore.Ref]struct{}{}, wake: make(chan struct{}, 1)}
}

// State returns what the replication did last.
func (r *Replicator) State() ReplicatorState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

func (r *Replicator) note(ref blobstore.Ref) {
	r.mu.Lock()
	if len(r.pending) < maxPending {
		r.pending[ref] = struct{}{}
	} else {
		r.whole = true
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Rescan asks for a whole pass soon: a policy changed.
func (r *Replicator) Rescan() {
	r.mu.Lock()
	r.whole = true
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// take returns the refs noted since the last call, or whole if too many
// were (or Rescan asked for a whole pass).
func (r *Replicator) take() (refs []blobstore.Ref, whole bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ref := range r.pending {
		refs = append(refs, ref)
	}
	whole = r.whole
	r.pending, r.whole = map[blobstore.Ref]struct{}{}, false
	return refs, whole
}

// Run replicates until ctx ends. A pass under way then goes on for up to
// drainTimeout, and so does one over what was noted since it began (the
// last snapshot's blobs, the last files'): what is left waits for the
// next run. An interrupted copy is made again then: nothing records a
// copy before it is durable.
func (r *Replicator) Run(ctx context.Context, s *Store) {
	s.meta.OnBlobNoted(r.note)
	defer s.meta.OnBlobNoted(nil)
	passes, stopPasses := context.WithCancel(context.Background())
	defer stopPasses()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(drainTimeout, stopPasses) })
	defer stop()
	whole := true
	full := time.NewTicker(ReplicatorFullEvery)
	defer full.Stop()
	for ctx.Err() == nil {
		var refs []blobstore.Ref
		if !whole {
			refs, whole = r.take()
		}
		if whole || len(refs) > 0 {
			r.pass(passes, s, refs, whole)
		}
		whole = false
		select {
		case <-ctx.Done():
		case <-full.C:
			whole = true
		case <-r.wake:
			select {
			case <-ctx.Done():
			case <-time.After(replicatorDelay):
			}
		}
	}
	if refs, whole := r.take(); !whole && len(refs) > 0 && passes.Err() == nil {
		r.pass(passes, s, refs, false)
	}
}

// drainTimeout bounds how long a stopped Run goes on copying.
const drainTimeout = 10 * time.Second

func (r *Replicator) pass(ctx context.Context, s *Store, refs []blobstore.Ref, whole bool) {
	r.mu.Lock()
	r.state.Running = true
	r.mu.Unlock()
	opts := PolicyOptions{ReadRate: r.readRate, Damaged: r.damaged, Failed: func(f Finding) {
		r.mu.Lock()
		r.state.Failed++
		r.mu.Unlock()
		r.logf("replication: could not copy blob %s (volume %s): %s", f.Ref, f.Volume, f.Error)
	}, Copied: func(_ blobstore.Ref, _ string, bytes int64) {
		r.mu.Lock()
		r.state.Copied++
		r.state.Bytes += bytes
		r.mu.Unlock()
	}}
	if !whole {
		opts.Refs = refs
	}
	summary, err := s.ReplicateByPolicy(ctx, opts)
	r.mu.Lock()
	r.state.Running = false
	r.state.Passes++
	r.state.LastPass = time.Now().UTC()
	r.state.Last = summary
	r.mu.Unlock()
	switch {
	case ctx.Err() != nil:
		r.logf("replication: stopped after %d copies; the next mount goes on", summary.Copied)
		return
	case err != nil:
		r.logf("replication: %v", err)
	}
	if summary.Copied > 0 || summary.Failed > 0 || whole && summary.Short > 0 {
		r.logf("replication: %d copies made (%d bytes) of %d blobs below policy; %d failed; %d still below policy",
			summary.Copied, summary.Bytes, summary.Below, summary.Failed, summary.Short)
	}
}
