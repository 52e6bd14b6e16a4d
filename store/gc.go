package store

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/badger"
)

// DefaultGrace is how young a blob must be for a garbage collection to
// keep it whatever else: long enough for any writer that paused between
// storing a blob and recording what uses it. It is a second line of
// defence; what uses a blob is what keeps it.
const DefaultGrace = time.Hour

// GCOptions say how FindGarbage looks, and CollectGarbage collects.
type GCOptions struct {
	// Grace keeps every blob created less than Grace before the search
	// began (0: none; negative is an ErrInvalid error).
	Grace    time.Duration
	Reporter Reporter
	// Removed, when not nil, is called by CollectGarbage after each copy
	// it removes from a volume, with the number removed so far: for a
	// caller that counts, and for the tests that stop a collection part
	// way (a kill -9 at a chosen point).
	Removed func(ctx context.Context, removed int64)
	// Mount is the mount whose daemon runs the collection beside its
	// writers (nil: none; the store is not mounted). What it holds is
	// kept, and it hears of the blobs removed.
	Mount Mount
}

// Mount is what a garbage collection asks of a mount served by the same
// process (fusefs.Root implements it): what the mount's daemon holds that
// the metadata does not show, and which blobs went. Its methods may be
// called from any goroutine, while the mount serves, and never wait for
// the disk or for a file being written.
type Mount interface {
	// HeldBlobs calls fn with every blob the mount holds now, maybe more
	// than once: the content of every open file, also one unlinked since
	// (and the content it was opened with, when a writer has changed it
	// since), the content a file being rewritten started from (copy on
	// write), a blob being written into ref/ under its hex name, and what
	// a written name of ref/ was stored as. A blob being stored is the
	// Controller's (the ref's lock), not the mount's.
	HeldBlobs(fn func(blobstore.Ref))
	// BrowsedSnapshots calls fn with the root tree of every snapshot whose
	// tree the mount has shown since it was mounted: the kernel may keep
	// its entries (and so ask for its trees and files) after the snapshot
	// is forgotten.
	BrowsedSnapshots(fn func(root blobstore.Ref))
	// BlobsRemoved tells the mount that the copies of refs on volumeID
	// are gone, or condemned and going, so that ref/ stops showing them
	// at once (the kernel caches its entries for long). It may be called
	// for refs the mount never showed, and more than once. It may wait for
	// the kernel, so the caller holds no ref's lock.
	BlobsRemoved(volumeID int, refs []blobstore.Ref)
}

// GarbageReport is what FindGarbage found: every blob record of the
// store, live or not, and what freeing the ones that are not would give
// back on each volume.
type GarbageReport struct {
	Blobs   int64      `json:"blobs"` // blob records
	Live    LiveCounts `json:"live"`
	Garbage int64      `json:"garbage"` // blobs nothing keeps
	// Kept counts the garbage that a writer made live again (stored it
	// again, or a file started to use it) between the search and the
	// blob's condemnation, which found it so: kept, and not in Freed.
	Kept int64 `json:"kept,omitempty"`
	// Volumes says, per volume, how many copies of the garbage it holds
	// and their stored bytes: what a collection would free there.
	Volumes []VolumeGarbage `json:"volumes"`
	// Freed says, per volume, what CollectGarbage removed: the copies of
	// the garbage, and those an interrupted collection had condemned and
	// not removed yet (see CollectGarbage). Empty for FindGarbage.
	Freed     []VolumeGarbage `json:"freed,omitempty"`
	Snapshots int             `json:"snapshots"` // retained snapshots walked
	Trees     int             `json:"trees"`     // distinct directory trees walked
	Grace     time.Duration   `json:"grace_ns"`
	Elapsed   time.Duration   `json:"elapsed_ns"`
}

// LiveCounts counts the live blobs by the first thing, in this order,
// that keeps each: a file of files/, a retained snapshot (or one a mount
// has shown), an explicit store, what a mount's daemon holds, the grace
// period.
type LiveCounts struct {
	Files     int64 `json:"files"`
	Snapshots int64 `json:"snapshots"`
	Explicit  int64 `json:"explicit"`
	Held      int64 `json:"held"` // by a mount's daemon (Mount.HeldBlobs)
	Young     int64 `json:"young"`
}

// VolumeGarbage is the garbage one volume holds.
type VolumeGarbage struct {
	Volume string `json:"volume"`
	Blobs  int64  `json:"blobs"`
	Bytes  int64  `json:"bytes"` // stored bytes
}

// FindGarbage finds the blobs that nothing keeps and says what removing
// them would free on each volume; it removes nothing. A blob is live when
// a file of files/ uses it (the tree's index of blobs in use), when a
// retained snapshot does (a snapshot named on any volume: its record,
// index segments, tree blobs and files' blobs, walked from the volumes
// with the keys), when it is an explicit store not released, when the
// metadata still points to it (trees cached for the next snapshot, the
// journal's contents), when opts.Mount holds it (Mount.HeldBlobs, and
// the snapshots it has shown), or when it is younger than opts.Grace.
//
// It needs the keys (tree blobs are sealed) and every registered volume
// mounted: a snapshot named only on a volume left out would not be seen,
// and what it keeps would look unused. A snapshot that cannot be read is
// an error naming it: what it keeps cannot be known. What a mount's
// daemon holds (open files, files being written) is not in the metadata:
// a caller beside a mount gives it as opts.Mount. The Store's own
// snapshots and forgets wait for it.
//
// Memory: 8 bytes per blob the retained snapshots use (refSet), a map
// entry per directory tree and index segment, and one chunk of records
// at a time: the records stream from the metadata in ref order, a few
// thousand to a read (badger.Store.EachBlobUse), so that no read stays
// open while CollectGarbage condemns.
func (s *Store) FindGarbage(ctx context.Context, opts GCOptions) (*GarbageReport, error) {
	s.snapshotMu.Lock()
	defer s.snapshotMu.Unlock()
	return s.findGarbage(ctx, opts, nil)
}

// findGarbage is FindGarbage, with garbage called for each blob found to
// be garbage (nil: none), during the stream of the records; the caller
// holds snapshotMu.
func (s *Store) findGarbage(ctx context.Context, opts GCOptions, garbage func(badger.BlobUse) error) (*GarbageReport, error) {
	start := time.Now()
	if opts.Grace < 0 {
		return nil, invalidf("a grace period of %s: it is 0 or more", opts.Grace)
	}
	if s.meta.Ring() == nil {
		return nil, ErrLocked
	}
	volumes, err := s.allVolumesMounted(ctx, "a snapshot named only on a volume left out would not be seen")
	if err != nil {
		return nil, err
	}
	r := reporterOr(opts.Reporter)
	w := &liveWalk{store: s, live: &refSet{}, dirs: map[blobstore.Ref]bool{}, segments: map[blobstore.Ref]bool{}, r: r}
	r.Begin("gc: what the snapshots keep (directories)", 0, 0)
	err = w.retained(ctx, volumes)
	if err == nil {
		err = w.metadata(ctx)
	}
	if err == nil && opts.Mount != nil {
		err = w.browsed(ctx, opts.Mount)
	}
	r.End()
	if err != nil {
		return nil, err
	}
	w.live.compact()
	report := &GarbageReport{Snapshots: w.snapshots, Trees: len(w.dirs), Grace: opts.Grace}
	held := heldBy(opts.Mount)
	if err := s.sortBlobs(ctx, w.live, held, start.Add(-opts.Grace), report, r, garbage); err != nil {
		return nil, err
	}
	report.Elapsed = time.Since(start)
	return report, nil
}

// sortBlobs goes through every blob record, counts it live or garbage,
// sums the garbage per volume, and calls garbage (if not nil) with each
// garbage blob.
func (s *Store) sortBlobs(ctx context.Context, live *refSet, held map[blobstore.Ref]bool, youngAfter time.Time, report *GarbageReport, r Reporter,
	garbage func(badger.BlobUse) error) error {
	total, err := s.recordCount(ctx)
	if err != nil {
		return err
	}
	r.Begin("gc: find the blobs nothing keeps", total, 0)
	defer r.End()
	perVolume := map[int]*VolumeGarbage{}
	err = s.meta.EachBlobUse(ctx, func(b badger.BlobUse) error {
		report.Blobs++
		r.Add(1, 0)
		switch {
		case b.Files:
			report.Live.Files++
		case live.has(b.Ref):
			report.Live.Snapshots++
		case b.Explicit:
			report.Live.Explicit++
		case held[b.Ref]:
			report.Live.Held++
		case b.Created.After(youngAfter):
			report.Live.Young++
		default:
			report.Garbage++
			for _, id := range b.Volumes {
				v := perVolume[id]
				if v == nil {
					v = &VolumeGarbage{Volume: s.VolumeName(ctx, id)}
					perVolume[id] = v
				}
				v.Blobs++
				v.Bytes += b.SizeOnDisk
			}
			if garbage != nil {
				return garbage(b)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	report.Volumes = []VolumeGarbage{}
	for _, v := range perVolume {
		report.Volumes = append(report.Volumes, *v)
	}
	slices.SortFunc(report.Volumes, func(a, b VolumeGarbage) int { return strings.Compare(a.Volume, b.Volume) })
	return nil
}

// recordCount is roughly how many blob records there are, for progress:
// the copies the volumes count, which is the records when each blob has
// one copy.
func (s *Store) recordCount(ctx context.Context) (int64, error) {
	all, err := s.Volumes(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, v := range all {
		n += v.BlobCount
	}
	return n, nil
}

// heldBy is what mount holds now (nil: nothing): the set a search
// starts from; Condemn asks again in each of its transactions.
func heldBy(mount Mount) map[blobstore.Ref]bool {
	held := map[blobstore.Ref]bool{}
	if mount != nil {
		mount.HeldBlobs(func(ref blobstore.Ref) { held[ref] = true })
	}
	return held
}
