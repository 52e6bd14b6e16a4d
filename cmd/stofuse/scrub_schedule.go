package main

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/store"
)

// A mount's scheduled scrub (--scrub-every): every mounted volume whose
// last whole scrub finished longer ago than the interval (or that was
// never scrubbed) is scrubbed, one at a time, at --scrub-rate, with what
// it finds repaired (as scrub --repair does; a read-only mount only
// reports). A scrub the unmount interrupts records where it was, and the
// next mount goes on from there (as scrub --resume does). Findings and
// results go to the log, the last scrub to `stofuse status` and
// `stofuse scrub --status`, the blobs checked to the metrics.
//
// It is off by default: a scrub reads every byte of every volume, which
// on a metered S3 bucket costs money and on a laptop's disk battery, and
// how often is worth that is the user's call (ZFS and btrfs leave it to a
// monthly timer; --scrub-every 720h is the same).

// defaultScrubRate paces a scheduled scrub so that reads through the mount
// keep their latency (test/bench/scrub.sh measures what a rate costs).
const defaultScrubRate = "50M"

// scrubSchedulePoll bounds how long the schedule sleeps between looks, so
// that a volume whose scrub came due (or that was mounted meanwhile) is
// not left waiting for the interval's end.
const scrubSchedulePoll = time.Hour

// scrubEvery runs the schedule in a goroutine until stop is called, which
// interrupts a scrub in progress (its state kept) and returns once it has
// stopped.
func (s *session) scrubEvery(interval time.Duration, rate float64, repair bool, observer store.Observer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			wait := s.scrubDue(ctx, interval, rate, repair, observer)
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(wait, scrubSchedulePoll)):
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// scrubDue scrubs the volumes that are due, and returns how long until the
// next one is.
func (s *session) scrubDue(ctx context.Context, interval time.Duration, rate float64, repair bool, observer store.Observer) time.Duration {
	volumes, err := s.ChosenVolumes(ctx, "")
	if err != nil {
		s.out.warnf("scheduled scrub: %v", err)
		return interval
	}
	next := interval
	for _, v := range volumes {
		if s.Unavailable(v.ID) != nil {
			continue
		}
		due, resume := s.scrubDueIn(ctx, v, interval)
		if due > 0 {
			next = min(next, due)
			continue
		}
		s.scheduledScrub(ctx, v, rate, repair, resume, observer)
		if ctx.Err() != nil {
			return 0
		}
	}
	return next
}

// scrubDueIn says how long until volume v's next scheduled scrub, and
// whether one is to be resumed (0: now).
func (s *session) scrubDueIn(ctx context.Context, v *badger.Volume, interval time.Duration) (time.Duration, bool) {
	state, err := s.ScrubState(ctx, v.ID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0, false
	case err != nil:
		s.out.warnf("scheduled scrub of volume %s: %v", v.Label, err)
		return interval, false
	case state.Finished.IsZero():
		return 0, true
	}
	return time.Until(state.Finished.Add(interval)), false
}

func (s *session) scheduledScrub(ctx context.Context, v *badger.Volume, rate float64, repair, resume bool, observer store.Observer) {
	what := "starting"
	if resume {
		what = "going on with"
	}
	s.out.notef("scheduled scrub: %s the scrub of volume %s", what, v.Label)
	summary := s.ScrubVolume(ctx, v, store.ScrubOptions{Resume: true, Repair: repair, ReadRate: rate,
		Found: func(f store.Finding) {
			say := s.out.warnf
			if f.Kind == store.Repaired {
				say = s.out.notef
			}
			say("scheduled scrub: %s %s on volume %s: %s", f.Kind, f.Ref, f.Volume, f.Error)
		},
		Observer: observer})
	if ctx.Err() != nil {
		s.out.notef("scheduled scrub of volume %s interrupted after %d blobs; the next mount goes on from there", v.Label, summary.Blobs)
		return
	}
	s.out.notef("scheduled scrub of volume %s: %d blobs, %s checked; %s", v.Label, summary.Blobs,
		formatBytes(summary.Bytes), scrubCounts(summary, repair))
}
