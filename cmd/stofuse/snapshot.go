package main

import (
	"context"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/metastore/snapshot"
	"github.com/stofuse/stofuse/store"
)

func snapshotCommand() *cli.Command {
	volumeFlag := &cli.StringFlag{Name: "volume", Value: store.DefaultVolume, Usage: "the volume the snapshots are on (name or id)"}
	return &cli.Command{
		Name:      "snapshot",
		Usage:     "snapshot collections' files/ trees onto the volume, list and compare snapshots",
		ArgsUsage: "[COLLECTION...]",
		Description: "Stores a snapshot of each COLLECTION's files/ tree (default: every collection with a\n" +
			"folder) on the volume, as blobs sealed with the collection's key: one per directory,\n" +
			"reused while the directory does not change, so a snapshot after a small change costs\n" +
			"little. A volume and a key are enough to get a snapshotted tree back (stofuse recover).\n" +
			"A tree that changed nothing since its last snapshot is not snapshotted again.",
		Flags:  []cli.Flag{volumeFlag},
		Action: snapshotTake,
		Subcommands: []*cli.Command{
			{
				Name:      "ls",
				Usage:     "list the snapshots of collections, oldest first",
				ArgsUsage: "[COLLECTION...]",
				Flags:     []cli.Flag{volumeFlag},
				Action:    snapshotList,
			},
			{
				Name:      "diff",
				Usage:     "show the paths added, removed and changed from snapshot A to snapshot B",
				ArgsUsage: "A B",
				Description: "A and B are snapshot names (as stofuse snapshot ls prints them) or \"latest\".\n" +
					"Each line is + (added), - (removed) or M (changed) and the path.",
				Flags:  []cli.Flag{volumeFlag, &cli.StringFlag{Name: "collection", Value: store.DefaultCollection, Usage: "the collection"}},
				Action: snapshotDiff,
			},
		},
	}
}

// collectionsOf is the collections named, or every one with a folder.
func (s *session) collectionsOf(c *cli.Context) ([]string, error) {
	if c.NArg() > 0 {
		return c.Args().Slice(), nil
	}
	all, err := s.Collections(c.Context)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, coll := range all {
		if coll.FolderIno != 0 {
			names = append(names, coll.Name)
		}
	}
	return names, nil
}

// forEachCollection opens the store and calls fn for each collection the
// command names (or every one with a folder), with the chosen volume.
func forEachCollection(c *cli.Context, keys keyNeed, fn func(s *session, volumeID int, name string) error) error {
	s, err := openSession(c, keys)
	if err != nil {
		return err
	}
	defer s.Close()
	v, err := s.Volume(c.Context, c.String("volume"))
	if err != nil {
		return err
	}
	names, err := s.collectionsOf(c)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := fn(s, v.ID, name); err != nil {
			return err
		}
	}
	return nil
}

func snapshotTake(c *cli.Context) error {
	return forEachCollection(c, needKeys, func(s *session, volumeID int, name string) error {
		r, err := s.Snapshot(c.Context, name, volumeID)
		switch {
		case err != nil:
			return err
		case r.Empty:
			s.out.result(r, "%s: empty, nothing to snapshot", name)
		case r.Unchanged:
			s.out.result(r, "%s: unchanged since snapshot %s", name, r.Name)
		default:
			s.out.result(r, "%s: snapshot %s (%d directories encoded, %d new blobs, %s, %s)",
				name, r.Name, r.Dirs, r.NewBlobs, formatBytes(r.NewBytes), r.Elapsed.Round(time.Millisecond))
		}
		return nil
	})
}

func snapshotList(c *cli.Context) error {
	return forEachCollection(c, noKeys, func(s *session, volumeID int, name string) error {
		all, err := s.Snapshots(c.Context, name, volumeID)
		if err != nil {
			return err
		}
		for _, info := range all {
			s.out.result(info, "%-12s %s", name, info.Name)
		}
		return nil
	})
}

func snapshotDiff(c *cli.Context) error {
	if c.NArg() != 2 {
		return usageError("usage: stofuse snapshot diff [--collection C] A B")
	}
	s, err := openSession(c, needKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	v, err := s.Volume(c.Context, c.String("volume"))
	if err != nil {
		return err
	}
	collection := c.String("collection")
	a, err := s.FindSnapshot(c.Context, collection, c.Args().Get(0), v.ID)
	if err != nil {
		return usageError("%v (see stofuse snapshot ls)", err)
	}
	b, err := s.FindSnapshot(c.Context, collection, c.Args().Get(1), v.ID)
	if err != nil {
		return usageError("%v (see stofuse snapshot ls)", err)
	}
	return s.DiffSnapshots(c.Context, a, b, func(ch snapshot.Change) error {
		mark := map[snapshot.ChangeKind]string{snapshot.Added: "+", snapshot.Removed: "-", snapshot.Modified: "M"}[ch.Kind]
		s.out.result(map[string]string{"change": ch.Kind.String(), "path": ch.Path}, "%s %s", mark, ch.Path)
		return nil
	})
}

// defaultSnapshotInterval is how often a mount snapshots the collections
// that changed: what a lost metadata directory can cost at most.
const defaultSnapshotInterval = 10 * time.Minute

// snapshotEvery snapshots every collection that changed, every interval,
// until stop is called, which takes a last one. Results go to the log.
func (s *session) snapshotEvery(interval time.Duration, volumeID int) (stop func()) {
	return every(interval, func() { s.snapshotChanged(volumeID) })
}

// every calls fn every interval, in a goroutine, until stop is called,
// which calls it a last time and returns once that call has.
func every(interval time.Duration, fn func()) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				fn()
				return
			case <-ticker.C:
				fn()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// snapshotChanged snapshots the collections that changed since their
// last snapshot, and says so in the log.
func (s *session) snapshotChanged(volumeID int) {
	ctx := context.Background()
	all, err := s.Collections(ctx)
	if err != nil {
		s.out.warnf("snapshots: %v", err)
		return
	}
	for _, coll := range all {
		if coll.FolderIno == 0 {
			continue
		}
		r, err := s.Snapshot(ctx, coll.Name, volumeID)
		switch {
		case err != nil:
			s.out.warnf("snapshot of %s: %v", coll.Name, err)
		case !r.Unchanged && !r.Empty:
			s.out.notef("%s: snapshot %s (%d directories encoded, %d new blobs, %s)",
				coll.Name, r.Name, r.Dirs, r.NewBlobs, r.Elapsed.Round(time.Millisecond))
		}
	}
}
