package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/snapshot"
)

// refSet is a set of refs kept as the first 8 bytes of each, sorted: 8
// bytes a ref, so that the blobs of a million files take 8 MiB rather
// than a map's 60 or more. Two refs that share their first 8 bytes are one
// member, so a blob may be taken for a member when it is not (about one
// pair in 10^7 at a million members each side): that keeps a blob that is
// not live, never the other way round.
type refSet struct {
	keys   []uint64
	sorted int // keys[:sorted] are sorted and unique
}

func refKey(ref blobstore.Ref) uint64 { return binary.BigEndian.Uint64(ref[:8]) }

func (s *refSet) add(ref blobstore.Ref) {
	s.keys = append(s.keys, refKey(ref))
	if len(s.keys) >= 2*s.sorted+1<<16 {
		s.compact() // duplicates (shared by snapshots) do not pile up
	}
}

func (s *refSet) compact() {
	slices.Sort(s.keys)
	s.keys = slices.Compact(s.keys)
	s.sorted = len(s.keys)
}

// has reports membership; the set must be compacted since the last add.
func (s *refSet) has(ref blobstore.Ref) bool {
	_, found := slices.BinarySearch(s.keys[:s.sorted], refKey(ref))
	return found
}

// liveWalk collects the blobs the retained snapshots use: each snapshot's
// record, the segments of its blob index chain, every tree blob of every
// directory, and its files' content. A directory tree (or an index
// segment) met again, in another snapshot or another directory, is not
// walked again: it is content-addressed, so what it holds is the same.
// Those refs are kept exactly, in maps: there are as many as directories
// changed across the snapshots, far fewer than files.
type liveWalk struct {
	store     *Store
	live      *refSet
	dirs      map[blobstore.Ref]bool // directory trees walked
	segments  map[blobstore.Ref]bool // index segments read
	snapshots int
	r         Reporter
}

// snapshot walks one retained snapshot, whose record is named on volume.
func (w *liveWalk) snapshot(ctx context.Context, info *SnapshotInfo) error {
	rec, err := w.store.Record(ctx, info)
	if err != nil {
		return err
	}
	w.snapshots++
	w.live.add(info.Record)
	if err := w.index(ctx, rec.Index); err != nil {
		return err
	}
	return w.tree(ctx, rec.Root.Ref)
}

// index walks an index chain from its newest segment (zero: none).
func (w *liveWalk) index(ctx context.Context, head blobstore.Ref) error {
	for ref, n := head, 0; !ref.IsZero() && !w.segments[ref]; n++ {
		if n > 4*maxIndexChain {
			return fmt.Errorf("index segment %s: a chain of more than %d segments", head, 4*maxIndexChain)
		}
		w.segments[ref] = true
		w.live.add(ref)
		body, err := w.store.LoadTree(ctx, ref)
		if err != nil {
			return fmt.Errorf("index segment %s: %w", ref, err)
		}
		seg, err := snapshot.DecodeSegment(body)
		if err != nil {
			return fmt.Errorf("index segment %s: %w", ref, err)
		}
		ref = seg.Parent
	}
	return nil
}

// tree walks the directory whose root tree is root, and those below it,
// depth first with a stack (no recursion however deep the tree).
func (w *liveWalk) tree(ctx context.Context, root blobstore.Ref) error {
	load := func(ctx context.Context, ref blobstore.Ref) ([]byte, error) {
		w.live.add(ref) // every node of a directory's tree
		return w.store.LoadTree(ctx, ref)
	}
	stack := []blobstore.Ref{root}
	for len(stack) > 0 {
		dir := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if dir.IsZero() || w.dirs[dir] {
			continue
		}
		w.dirs[dir] = true
		c, err := snapshot.NewReader(load, dir).Entries(ctx, 0)
		if err != nil {
			return fmt.Errorf("directory tree %s: %w", dir, err)
		}
		for {
			e, err := c.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("directory tree %s: %w", dir, err)
			}
			switch {
			case e.Kind == snapshot.KindDir:
				stack = append(stack, e.Ref)
			case e.Kind == snapshot.KindFile && !e.Ref.IsZero():
				w.live.add(e.Ref)
			}
		}
		w.r.Add(1, 0)
	}
	return nil
}

// retained walks every snapshot named on any of volumes, for each
// collection, and the last snapshot each collection recorded (the one the
// next snapshot chains to, with the trees it reuses).
func (w *liveWalk) retained(ctx context.Context, volumes []int) error {
	collections, err := w.store.Collections(ctx)
	if err != nil {
		return err
	}
	for _, c := range collections {
		seen := map[string]bool{}
		for _, id := range volumes {
			driver, prefix, err := w.store.recordNames(ctx, c.Name, id)
			if err != nil {
				return err
			}
			names, err := listRecordNames(ctx, driver, prefix)
			if err != nil {
				return fmt.Errorf("listing the snapshots of %s on volume %s: %w", c.Name, w.store.VolumeName(ctx, id), err)
			}
			for _, name := range names {
				if seen[name] {
					continue // the same record, named on another volume too
				}
				seen[name] = true
				info, err := readRecordInfo(ctx, driver, prefix, c.Name, name)
				if err == nil {
					err = w.snapshot(ctx, info)
				}
				if err != nil {
					return fmt.Errorf("snapshot %s of %s cannot be read, so what it keeps is not known: %w", name, c.Name, err)
				}
			}
		}
		if err := w.lastSnapshot(ctx, c.Name); err != nil {
			return err
		}
	}
	return nil
}

// lastSnapshot keeps what a collection's last snapshot state names.
func (w *liveWalk) lastSnapshot(ctx context.Context, collection string) error {
	var last lastSnapshot
	err := w.store.meta.State(ctx, lastSnapshotState(collection), &last)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	w.live.add(last.Record)
	if err := w.index(ctx, last.Index); err != nil {
		return fmt.Errorf("the last snapshot of %s: %w", collection, err)
	}
	if err := w.tree(ctx, last.Root.Ref); err != nil {
		return fmt.Errorf("the last snapshot of %s: %w", collection, err)
	}
	return nil
}

// metadata keeps what the metadata itself still points to besides files:
// the trees cached for the next snapshot, and the contents the journal
// may put back after an unclean stop.
func (w *liveWalk) metadata(ctx context.Context) error {
	var cached []blobstore.Ref
	if err := w.store.meta.CachedTrees(ctx, func(ref blobstore.Ref) error {
		cached = append(cached, ref)
		return nil
	}); err != nil {
		return err
	}
	for _, ref := range cached {
		if err := w.tree(ctx, ref); err != nil {
			return fmt.Errorf("a tree cached for the next snapshot: %w", err)
		}
	}
	j, err := w.store.meta.Journal(ctx)
	if err != nil {
		return err
	}
	for _, c := range j.Contents {
		w.live.add(c.Durable.Ref)
		if c.Newer != nil {
			w.live.add(c.Newer.Ref)
		}
	}
	for _, r := range j.Replaced {
		if r.Replaced != nil {
			w.live.add(r.Replaced.Ref)
		}
	}
	return nil
}

// browsed keeps what the snapshots mount has shown keep, forgotten since
// or not: the kernel may still ask for their trees and files.
func (w *liveWalk) browsed(ctx context.Context, mount Mount) error {
	var roots []blobstore.Ref
	mount.BrowsedSnapshots(func(root blobstore.Ref) { roots = append(roots, root) })
	for _, root := range roots {
		if err := w.tree(ctx, root); err != nil {
			return fmt.Errorf("a snapshot the mount has shown: %w", err)
		}
	}
	return nil
}
