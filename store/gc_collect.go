package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/badger"
)

// A garbage collection removes a blob in two steps, so that a crash at any
// point leaves a store whose every live blob is whole and recorded:
//
//  1. condemn: holding the batch's refs' locks, in one metadata
//     transaction per batch, each blob that nothing keeps now (read again
//     in that transaction) loses its record, the volumes' index keys and
//     counts and its blob index mark, and each of its copies gets an
//     entry in the condemned journal (badger.Condemn); then the metadata
//     is synced;
//  2. remove: holding the ref's lock, each condemned copy that is not
//     recorded on its volume again is removed from it (and an
//     explicit-store note of it, if the volume has one), the removals of
//     a batch made durable together (the driver's Sync), then their
//     entries dropped (removeCondemned).
//
// After step 1 nothing can find the blob: a scrub does not look for it
// (the metadata does not list it), a read cannot open it, and a writer of
// the same content (a put, a file of files/, ref/) stores it anew and
// records it, under the ref's lock, which drops the entry of the copy it
// stored in the same transaction (so step 2, which checks under the same
// lock that a copy it removes is not recorded, leaves it). An
// interrupted step 2 is finished by the next Open (before anything else
// uses the store) or the next CollectGarbage, from the journal.

// condemnBatch is how many blobs one condemning transaction removes: a
// few thousand writes, well under Badger's transaction limits.
const condemnBatch = 1024

// removeBatch is how many condemned copies are read, removed, synced (one
// driver Sync: on localfs a syncfs) and dropped from the journal at a time.
const removeBatch = 4096

// CollectGarbage finds the garbage as FindGarbage does, and removes it:
// every copy of every garbage blob from its volume, and the blob from the
// metadata (see the steps above). It also finishes what an interrupted
// collection left in the condemned journal. The report's Freed says what
// was removed on each volume; opts.Removed hears of each copy removed,
// opts.Mount of each batch.
//
// It needs what FindGarbage needs (the keys, every volume mounted). It
// may run beside writers of the same Store (a mount's daemon, given as
// opts.Mount, and the commands it runs): a blob is condemned under its
// ref's lock (diskaccess.Controller.LockRefs), in a transaction that
// reads again, after it began, everything that keeps a blob but the
// snapshots (which wait for it) and the grace period (badger.Condemn,
// with the mount's holds as its Keeper), and a copy is removed under the
// same lock, once it is checked to be recorded nowhere on its volume. A
// writer records a blob, or a use of a blob it found stored, only under
// that lock, so it either comes first and the blob is kept (counted in
// Kept), or after, when the blob is no longer recorded and it stores it
// anew, which drops the copy's condemned entry in its own transaction. A
// failure half-way leaves the rest condemned, not removed, for the next
// Open or collection; nothing live is ever condemned.
func (s *Store) CollectGarbage(ctx context.Context, opts GCOptions) (*GarbageReport, error) {
	s.snapshotMu.Lock()
	defer s.snapshotMu.Unlock()
	start := time.Now()
	var batch []blobstore.Ref
	var kept int64
	condemn := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := s.condemn(ctx, batch, opts.Mount)
		kept += n
		batch = batch[:0]
		return err
	}
	report, err := s.findGarbage(ctx, opts, func(b badger.BlobUse) error {
		batch = append(batch, b.Ref)
		if len(batch) == condemnBatch {
			return condemn()
		}
		return nil
	})
	if err == nil {
		err = condemn()
	}
	if err == nil {
		// The entries are durable before the first copy goes: a power loss
		// must not bring back a record whose copy was removed.
		err = s.meta.Sync(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("condemning the garbage: %w", err)
	}
	report.Kept = kept
	removed, err := s.removeCondemned(ctx, reporterOr(opts.Reporter), opts.Removed, opts.Mount)
	if err != nil {
		return nil, err
	}
	report.Freed = removed.perVolume(ctx, s)
	report.Elapsed = time.Since(start)
	return report, nil
}

// condemn condemns the garbage blobs refs (in ref order), holding their
// locks, and returns how many of them were found live and kept.
func (s *Store) condemn(ctx context.Context, refs []blobstore.Ref, mount Mount) (int64, error) {
	var keeper badger.Keeper
	if mount != nil {
		keeper = func() (func(blobstore.Ref) bool, error) {
			held := heldBy(mount)
			return func(ref blobstore.Ref) bool { return held[ref] }, nil
		}
	}
	unlock := s.ctl.LockRefs(refs)
	copies, kept, err := s.meta.Condemn(ctx, refs, keeper)
	unlock()
	// Condemned blobs are not found any more: the mount's cached entries
	// go now (after the locks: the kernel may wait for a request in ref/
	// that waits for one), not only once their copies are removed.
	byVolume := map[int][]blobstore.Ref{}
	for _, c := range copies {
		byVolume[c.Volume] = append(byVolume[c.Volume], c.Ref)
	}
	for id, refs := range byVolume {
		tellMount(mount, id, refs)
	}
	return int64(len(kept)), err
}

// removal counts what removeCondemned removed, by volume id.
type removal struct {
	freed     map[int]*VolumeGarbage
	reprieved int64 // condemned copies recorded again: kept
	total     int64
	left      error // why some are left (a volume not mounted, a failure)
}

func (m *removal) perVolume(ctx context.Context, s *Store) []VolumeGarbage {
	out := []VolumeGarbage{}
	for id, v := range m.freed {
		v.Volume = s.VolumeName(ctx, id)
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b VolumeGarbage) int { return strings.Compare(a.Volume, b.Volume) })
	return out
}

// removeCondemned removes every copy the condemned journal names on the
// mounted volumes, and drops their entries; a volume not mounted keeps its
// entries for later (said in the result's left). It returns an error only
// for a failure that stopped it; what it removed until then is dropped
// from the journal.
func (s *Store) removeCondemned(ctx context.Context, r Reporter, removed func(context.Context, int64), mount Mount) (*removal, error) {
	counts, err := s.meta.CondemnedCounts(ctx)
	if err != nil {
		return nil, err
	}
	result := &removal{freed: map[int]*VolumeGarbage{}}
	var copies, bytes int64
	for _, c := range counts {
		copies, bytes = copies+c.Copies, bytes+c.Bytes
	}
	if copies == 0 {
		return result, nil
	}
	r.Begin("gc: remove the garbage", copies, bytes)
	defer r.End()
	ids := make([]int, 0, len(counts))
	for id := range counts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if why := s.unavailable.get(id); why != nil || !s.ctl.IsMounted(id) {
			result.left = errors.Join(result.left, fmt.Errorf("volume %s is not mounted: %d condemned copies left for later", s.VolumeName(ctx, id), counts[id].Copies))
			continue
		}
		if err := s.removeFromVolume(ctx, id, result, r, removed, mount); err != nil {
			return result, fmt.Errorf("removing the garbage from volume %s: %w", s.VolumeName(ctx, id), err)
		}
	}
	return result, nil
}

// removeFromVolume removes the condemned copies on one mounted volume.
func (s *Store) removeFromVolume(ctx context.Context, id int, result *removal, r Reporter, removed func(context.Context, int64), mount Mount) error {
	driver, err := s.ctl.Driver(id)
	if err != nil {
		return err
	}
	notes, err := notesByRef(ctx, driver)
	if err != nil {
		return err
	}
	freed := result.freed[id]
	if freed == nil {
		freed = &VolumeGarbage{}
		result.freed[id] = freed
	}
	var after blobstore.Ref
	for {
		batch, err := s.meta.CondemnedOn(ctx, id, after, removeBatch)
		if err != nil || len(batch) == 0 {
			return err
		}
		gone := make([]blobstore.Ref, 0, len(batch))
		for i, c := range batch {
			kept, err := s.removeCopy(ctx, driver, c, notes[c.Ref])
			if err != nil {
				// Drop the entries of the copies removed, keep the rest.
				return errors.Join(err, s.dropRemoved(ctx, driver, batch[:i]), tellMount(mount, id, gone))
			}
			r.Add(1, c.Size)
			if kept {
				result.reprieved++
				continue
			}
			gone = append(gone, c.Ref)
			freed.Blobs++
			freed.Bytes += c.Size
			result.total++
			if removed != nil {
				removed(ctx, result.total)
			}
		}
		if err := s.dropRemoved(ctx, driver, batch); err != nil {
			return errors.Join(err, tellMount(mount, id, gone))
		}
		tellMount(mount, id, gone)
		after = batch[len(batch)-1].Ref
	}
}

// dropRemoved makes the removals of copies durable (they were made under
// WithDeferredSync: one Sync for a batch, not a directory fsync each),
// then drops their entries: an entry goes only once its copy cannot come
// back, or a power loss could leave a copy that nothing names.
func (s *Store) dropRemoved(ctx context.Context, driver blobstore.Driver, copies []badger.CondemnedCopy) error {
	if len(copies) == 0 {
		return nil
	}
	if err := driver.Sync(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("syncing the removals: %w", err)
	}
	return s.meta.DropCondemned(ctx, copies)
}

// removeCopy removes one condemned copy, and the explicit-store notes of
// it on the volume, unless the blob is recorded on the volume again
// (stored since it was condemned: kept reports it). A copy that is gone
// already (removed before a crash) is no error.
func (s *Store) removeCopy(ctx context.Context, driver blobstore.Driver, c badger.CondemnedCopy, notes []string) (kept bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	// Under the ref's lock no writer publishes or records a copy of it:
	// one that stored it again before has recorded it (and dropped the
	// entry), one after finds it unrecorded and publishes its own copy
	// once this one is gone. Without the lock a writer could publish and
	// record its copy between the check and the removal, which would then
	// take a recorded blob's only copy.
	unlock := s.ctl.LockRefs([]blobstore.Ref{c.Ref})
	defer unlock()
	recorded, err := s.meta.Recorded(ctx, c.Ref, c.Volume)
	if err != nil || recorded {
		return recorded, err
	}
	if err := driver.Remove(blobstore.WithDeferredSync(ctx), c.Ref); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("blob %s: %w", c.Ref, err)
	}
	for _, name := range notes {
		if err := driver.RemoveObject(ctx, name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("the explicit-store note of %s: %w", c.Ref, err)
		}
	}
	return false, nil
}

// notesByRef lists a volume's explicit-store notes by the ref they name:
// few (a note lives from a promotion to the next snapshot), so kept whole.
func notesByRef(ctx context.Context, driver blobstore.Driver) (map[blobstore.Ref][]string, error) {
	notes := map[blobstore.Ref][]string{}
	err := explicitNotes(ctx, driver, explicitNotePrefix, func(name string, ref blobstore.Ref) error {
		notes[ref] = append(notes[ref], name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the explicit-store notes: %w", err)
	}
	return notes, nil
}

// CollectionFinish is what an Open did with what an interrupted garbage
// collection had condemned and not removed yet.
type CollectionFinish struct {
	Removed   int64 `json:"removed"` // copies removed (or found gone)
	Bytes     int64 `json:"bytes"`   // their stored bytes
	Reprieved int64 `json:"reprieved,omitempty"`
	// Left says why some copies are still condemned (a volume not
	// mounted, a removal that failed): the next Open or collection
	// removes them.
	Left string `json:"left,omitempty"`
}

// finishCollection removes, as the store opens, what an interrupted
// garbage collection condemned, before anything else uses the store. A
// failure to remove is no failure of the Open: those copies stay
// condemned (no one can find them), and the report says so.
func (s *Store) finishCollection(ctx context.Context) error {
	result, err := s.removeCondemned(ctx, quiet{}, nil, nil)
	if result == nil {
		return fmt.Errorf("finishing an interrupted garbage collection: %w", err)
	}
	left := errors.Join(result.left, err)
	if result.total == 0 && result.reprieved == 0 && left == nil {
		return nil
	}
	finish := &CollectionFinish{Removed: result.total, Reprieved: result.reprieved}
	for _, v := range result.freed {
		finish.Bytes += v.Bytes
	}
	if left != nil {
		finish.Left = left.Error()
	}
	if s.settled == nil || s.settled.Clean {
		s.settled = &SettleReport{}
	}
	s.settled.Collection = finish
	return nil
}

// tellMount tells mount (if any) that the copies of refs on volume id are
// gone; it returns nil, for errors.Join.
func tellMount(mount Mount, id int, refs []blobstore.Ref) error {
	if mount != nil && len(refs) > 0 {
		mount.BlobsRemoved(id, refs)
	}
	return nil
}
