package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
)

// FindingKind says what a scrub found.
type FindingKind string

const (
	Damaged     FindingKind = "damaged"     // the stored bytes do not match their checksum
	Missing     FindingKind = "missing"     // the metadata lists it, the volume does not hold it
	Orphan      FindingKind = "orphan"      // stored, but unknown to the metadata (harmless)
	Unavailable FindingKind = "unavailable" // the volume could not be scrubbed at all
	Failed      FindingKind = "error"       // a check that could not be made
	NotCopied   FindingKind = "failed"      // replicate could not copy it
	Repaired    FindingKind = "repaired"    // a damaged or missing copy replaced from another volume
)

// Finding is one thing a scrub (or a replicate) found.
type Finding struct {
	Kind   FindingKind   `json:"finding"`
	Ref    blobstore.Ref `json:"ref,omitzero"`
	Volume string        `json:"volume"`
	Frame  *int          `json:"frame,omitempty"`
	Region string        `json:"region,omitempty"`
	Error  string        `json:"error,omitempty"`
	Size   int64         `json:"size,omitempty"`
	From   string        `json:"from,omitempty"` // the volume a repair copied from
	// Holds is the blob whose stored bytes a damaged copy holds instead
	// of its own (diskaccess.OtherBlobError), when that is known.
	Holds blobstore.Ref `json:"holds,omitzero"`
}

// ScrubSummary counts what a scrub of one volume checked and found.
type ScrubSummary struct {
	Volume   string `json:"volume"`
	Blobs    int64  `json:"blobs"`
	Bytes    int64  `json:"bytes"`
	Damaged  int    `json:"damaged"`
	Missing  int    `json:"missing"`
	Orphans  int    `json:"orphans"`
	Failures int    `json:"errors"`
	// Repaired counts the damaged and missing copies replaced (included
	// in Damaged and Missing too).
	Repaired int `json:"repaired"`
	// Unused counts the blobs no file under files/ uses (not a failure:
	// snapshots and explicit stores keep blobs too; stofuse gc --dry-run
	// says which are garbage).
	Unused int `json:"unused"`
}

// Failed reports whether the scrub found damage or missing blobs that
// were not repaired, or errors.
func (s ScrubSummary) Failed() bool { return s.Damaged+s.Missing-s.Repaired+s.Failures > 0 }

// ScrubState is a volume's last full scrub, kept in the store as it goes,
// so that an interrupted scrub can resume and its status be shown.
type ScrubState struct {
	Volume      string        `json:"volume"`
	Started     time.Time     `json:"started"`
	Updated     time.Time     `json:"updated"`
	Finished    time.Time     `json:"finished,omitzero"`
	Interrupted bool          `json:"interrupted,omitempty"`
	Position    blobstore.Ref `json:"position"` // the last blob checked
	Summary     ScrubSummary  `json:"summary"`
	Findings    []Finding     `json:"findings,omitempty"` // the first maxFindings
}

// maxFindings bounds the findings a scrub state keeps.
const maxFindings = 1000

// saveEvery is how often a running scrub records where it is.
const saveEvery = 2 * time.Second

func scrubStateName(volumeID int) string { return fmt.Sprintf("scrub/%d", volumeID) }

// ScrubOptions say what a scrub checks and whom it tells.
type ScrubOptions struct {
	Refs     []blobstore.Ref // only these; none: the whole volume, with its state kept
	Resume   bool            // go on after an interrupted whole-volume scrub
	Repair   bool            // replace damaged and missing copies from good ones (see Store.Repair)
	ReadRate float64         // bytes per second read at most (0: no limit)
	Found    func(Finding)   // each finding as it is made (nil: none)
	Reporter Reporter        // progress
	Observer Observer        // counts each blob checked (nil: none)
}

// ScrubState returns a volume's last whole-volume scrub, or an
// fs.ErrNotExist error if it was never scrubbed.
func (s *Store) ScrubState(ctx context.Context, volumeID int) (*ScrubState, error) {
	var state ScrubState
	if err := s.meta.State(ctx, scrubStateName(volumeID), &state); err != nil {
		return nil, err
	}
	return &state, nil
}

// ScrubVolume checks the stored bytes of the blobs a volume should hold
// (or opts.Refs) against their checksums, with no key, and finds the
// volume's files the metadata does not know. What it finds is reported
// through opts.Found and counted in the summary; an error on the way is a
// finding too. A whole-volume scrub records its state as it goes (and
// when ctx is cancelled), so that opts.Resume can go on from there.
func (s *Store) ScrubVolume(ctx context.Context, v *badger.Volume, opts ScrubOptions) ScrubSummary {
	sc := &scrub{store: s, v: v, opts: opts, r: reporterOr(opts.Reporter), ctx: limitReads(ctx, opts.ReadRate)}
	sc.state = &ScrubState{Volume: v.Label, Started: time.Now().UTC(), Summary: ScrubSummary{Volume: v.Label}}
	if len(opts.Refs) == 0 && opts.Resume {
		if saved, err := s.ScrubState(ctx, v.ID); err == nil && saved.Finished.IsZero() {
			sc.state = saved
			sc.state.Interrupted = false
			sc.r.Note(fmt.Sprintf("resuming the scrub of volume %s after %d blobs (started %s)",
				v.Label, saved.Summary.Blobs, saved.Started.Format(time.RFC3339)))
		}
	}
	sc.run()
	return sc.state.Summary
}

// scrub is one running ScrubVolume.
type scrub struct {
	store    *Store
	v        *badger.Volume
	opts     ScrubOptions
	r        Reporter
	ctx      context.Context
	state    *ScrubState
	lastSave time.Time
}

func (sc *scrub) run() {
	if why := sc.store.unavailable.get(sc.v.ID); why != nil {
		sc.report(Finding{Kind: Unavailable, Error: why.Error()})
		return
	}
	sum := &sc.state.Summary
	sc.r.Begin("scrub "+sc.v.Label, sc.v.BlobCount, sc.v.Bytes)
	sc.r.Add(sum.Blobs, sum.Bytes)
	defer sc.r.End()
	sc.lastSave = time.Now()
	if len(sc.opts.Refs) > 0 {
		for _, ref := range sc.opts.Refs {
			sc.check(ref)
		}
		return
	}
	if err := sc.all(); err != nil && sc.ctx.Err() == nil {
		sc.report(Finding{Kind: Failed, Error: err.Error()})
	}
	if sc.ctx.Err() != nil {
		sc.state.Interrupted = true
	} else {
		sc.state.Finished = time.Now().UTC()
	}
	sc.save()
}

func (sc *scrub) report(f Finding) {
	f.Volume = sc.v.Label
	sum := &sc.state.Summary
	switch f.Kind {
	case Damaged:
		sum.Damaged++
	case Missing:
		sum.Missing++
	case Orphan:
		sum.Orphans++
	case Repaired:
		sum.Repaired++
	default:
		sum.Failures++
	}
	if len(sc.state.Findings) < maxFindings {
		sc.state.Findings = append(sc.state.Findings, f)
	}
	if sc.opts.Found != nil {
		sc.opts.Found(f)
	}
}

// check scrubs one blob.
func (sc *scrub) check(ref blobstore.Ref) {
	checked, err := sc.store.ctl.ScrubWithKeys(sc.ctx, ref, sc.v.ID, sc.store.keyRing())
	if sc.ctx.Err() != nil {
		return // interrupted: this blob is checked again on resume
	}
	sc.r.Add(1, checked)
	sum := &sc.state.Summary
	sum.Blobs++
	sum.Bytes += checked
	if err != nil {
		sc.found(scrubFinding(ref, err))
	}
	if sc.opts.Observer != nil {
		sc.opts.Observer.Scrubbed(sc.v.Label, err)
	}
	if files, err := sc.store.meta.FilesUsing(sc.ctx, ref); err == nil && files == 0 {
		sum.Unused++
	}
	if len(sc.opts.Refs) == 0 {
		sc.state.Position = ref
		if time.Since(sc.lastSave) > saveEvery {
			sc.save()
			sc.lastSave = time.Now()
		}
	}
}

// keyRing is the store's data keys, or nil (not a nil *keyring.Ring in
// an interface) when it was opened without a key: a scrub needs none, and
// uses them only to confirm whose bytes a misplaced copy holds.
func (s *Store) keyRing() diskaccess.KeyRing {
	if ring := s.meta.Ring(); ring != nil {
		return ring
	}
	return nil
}

// save records the scrub's state; it is saved even when the scrub's
// context is cancelled (that is when it matters most). A store opened
// ReadOnly records nothing (a scrub of it cannot be resumed).
func (sc *scrub) save() {
	if sc.store.ReadOnly() {
		return
	}
	sc.state.Updated = time.Now().UTC()
	if err := sc.store.meta.SetState(context.Background(), scrubStateName(sc.v.ID), sc.state); err != nil {
		sc.r.Warn(fmt.Sprintf("could not record the scrub's progress: %v", err))
	}
}

// found reports a blob's finding, repairing the copy first if asked.
func (sc *scrub) found(f Finding) {
	if sc.opts.Repair && (f.Kind == Damaged || f.Kind == Missing) {
		sc.repair(f)
		return
	}
	sc.report(f)
}

func scrubFinding(ref blobstore.Ref, err error) Finding {
	var corrupt *diskaccess.CorruptBlobError
	switch {
	case errors.Is(err, diskaccess.ErrMissing):
		return Finding{Kind: Missing, Ref: ref, Error: "the metadata lists it, the volume does not hold it"}
	case errors.As(err, &corrupt):
		f := Finding{Kind: Damaged, Ref: ref, Region: string(corrupt.Region), Error: corrupt.Err.Error()}
		if other := (*diskaccess.OtherBlobError)(nil); errors.As(err, &other) {
			f.Holds = other.Blob
		}
		if corrupt.Frame >= 0 {
			f.Frame = &corrupt.Frame
			f.Error = fmt.Sprintf("frame %d: %s", corrupt.Frame, f.Error)
		} else {
			f.Error = string(corrupt.Region) + ": " + f.Error
		}
		return f
	}
	return Finding{Kind: Failed, Ref: ref, Error: err.Error()}
}
