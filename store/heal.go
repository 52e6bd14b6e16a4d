package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
)

// Healer repairs, in the background, the damaged and missing copies that
// a mount's reads met and read around (diskaccess.OpenBlobAnyCopy): the
// mount's Controller reports each (diskaccess.WithDamageHandler with
// Report), and Run replaces it with a verified good copy (Repair). Each
// report and its outcome is logged once.
type Healer struct {
	logf   func(format string, args ...any)
	repair bool // false: log only (a read-only mount writes nothing)

	store   atomic.Pointer[Store] // set by Run: it names volumes
	mu      sync.Mutex
	pending []diskaccess.Damage
	wake    chan struct{}
}

// volume names volume id for the log.
func (h *Healer) volume(id int) string {
	if s := h.store.Load(); s != nil {
		return s.VolumeName(context.Background(), id)
	}
	return strconv.Itoa(id)
}

// healerQueue bounds the copies waiting for repair: reads of a volume that
// is damaged all over report faster than copies are made; what is dropped
// is logged, and a scrub --repair finds it.
const healerQueue = 4096

// NewHealer returns a Healer that logs with logf and, with repair false,
// only logs.
func NewHealer(logf func(format string, args ...any), repair bool) *Healer {
	return &Healer{logf: logf, repair: repair, wake: make(chan struct{}, 1)}
}

// Report is the damage handler: it logs the damage and queues its repair.
// It does not block.
func (h *Healer) Report(d diskaccess.Damage) {
	what := "damaged"
	if errors.Is(d.Err, diskaccess.ErrMissing) {
		what = "missing"
	}
	h.mu.Lock()
	queued := h.repair && len(h.pending) < healerQueue
	if queued {
		h.pending = append(h.pending, d)
	}
	h.mu.Unlock()
	said := fmt.Sprintf("blob %s: the copy on volume %s is %s (%v): read from volume %s", d.Ref, h.volume(d.Volume), what, d.Err, h.volume(d.ReadFrom))
	switch {
	case queued:
		h.logf("%s; queued for repair", said)
		select {
		case h.wake <- struct{}{}:
		default:
		}
	case h.repair:
		h.logf("%s; too many waiting for repair: stofuse scrub --repair replaces it", said)
	default:
		h.logf("%s; not repaired by a read-only mount: stofuse scrub --repair replaces it", said)
	}
}

// Run repairs what is reported, one copy at a time, until ctx is done.
func (h *Healer) Run(ctx context.Context, s *Store) {
	h.store.Store(s)
	for {
		h.mu.Lock()
		batch := h.pending
		h.pending = nil
		h.mu.Unlock()
		for _, d := range batch {
			if ctx.Err() != nil {
				return
			}
			h.heal(ctx, s, d)
		}
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		}
	}
}

func (h *Healer) heal(ctx context.Context, s *Store, d diskaccess.Damage) {
	bad, err := s.meta.VolumeByID(ctx, d.Volume)
	if err == nil {
		var from *badger.Volume
		from, err = s.Repair(ctx, d.Ref, bad)
		if err == nil {
			h.logf("blob %s: the copy on volume %s replaced with a verified copy from volume %s", d.Ref, bad.Label, from.Label)
			s.ctl.ForgetDamage(d.Ref, d.Volume)
			return
		}
		if errors.Is(err, ErrNoGoodCopy) {
			var also []*badger.Volume
			also, err = s.RepairFromFrames(ctx, d.Ref, bad)
			if err == nil {
				h.logf("blob %s: no copy was whole; the copy on volume %s replaced with one assembled from the good frames of every copy%s",
					d.Ref, bad.Label, alsoReplaced(also))
				s.ctl.ForgetDamage(d.Ref, d.Volume)
				for _, v := range also {
					s.ctl.ForgetDamage(d.Ref, v.ID)
				}
				return
			}
		}
	}
	if errors.Is(err, diskaccess.ErrCopyIntact) {
		h.logf("blob %s: the copy on volume %s verifies (size and checksum), so it is left as it is: %v", d.Ref, h.volume(d.Volume), d.Err)
		s.ctl.ForgetDamage(d.Ref, d.Volume) // a read that meets damage there again reports it again
		return
	}
	// Left reported: reads go on reading around it without logging it
	// again; a scrub --repair tries again.
	h.logf("blob %s: the copy on volume %s is not repaired: %v", d.Ref, h.volume(d.Volume), err)
}

// alsoReplaced says which other copies a repair replaced too.
func alsoReplaced(volumes []*badger.Volume) string {
	if len(volumes) == 0 {
		return ""
	}
	labels := make([]string, len(volumes))
	for i, v := range volumes {
		labels[i] = v.Label
	}
	return ", and with it the copy on volume " + strings.Join(labels, ", ")
}
