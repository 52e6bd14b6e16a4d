package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/store"
)

// gcPauseVar, for tests only, makes stofuse gc stop for good after it has
// removed that many blob copies (saying so on stderr), so that a test can
// kill it part way at a known point. Nothing else reads it.
const gcPauseVar = "STOFUSE_TEST_GC_PAUSE_AFTER"

func gcCommand() *cli.Command {
	return &cli.Command{
		Name:  "gc",
		Usage: "remove the blobs nothing keeps (--dry-run: say what that would free)",
		Description: "Finds, for the whole store, the blobs that are not live: used by no file of files/,\n" +
			"by no retained snapshot (its record, index, trees and files), not an explicit store\n" +
			"(see stofuse release), and older than --grace; then removes them from every volume\n" +
			"and from the metadata, and prints how many blobs and bytes it freed on each volume.\n" +
			"--dry-run prints what it would free and removes nothing. While the store is mounted it\n" +
			"runs in the mount's daemon, beside the writers, and also keeps what the mount holds\n" +
			"(open files, unlinked or not, files being written, snapshots shown); what it removes\n" +
			"leaves ref/ at once. It needs the key and every volume available. An interrupted gc\n" +
			"(Ctrl-C, kill -9, a power loss) is finished by the next command that opens the store,\n" +
			"or the next gc.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Usage: "count what would be freed; remove nothing"},
			&cli.DurationFlag{Name: "grace", Value: store.DefaultGrace, Usage: "keep every blob younger than this"},
		},
		Action: gcRun,
	}
}

func gcRun(c *cli.Context) error {
	if c.Duration("grace") < 0 {
		return usageError("--grace %s: a duration of 0 or more", c.Duration("grace"))
	}
	pause, err := gcPause(envOf(c))
	if err != nil {
		return err
	}
	s, err := openSession(c, needKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	opts := store.GCOptions{Grace: c.Duration("grace"), Reporter: s.out.reporter(), Removed: pause.hook(s.out),
		Mount: envOf(c).host.fuse()}
	if s.lent && opts.Mount == nil {
		return errors.New("the mount's daemon lent its store without its mount, so what the mount holds cannot be kept: gc refused")
	}
	if c.Bool("dry-run") {
		r, err := s.FindGarbage(c.Context, opts)
		if err != nil {
			return err
		}
		for _, v := range r.Volumes {
			s.out.textf("volume %s: %d blobs, %s would be freed", v.Volume, v.Blobs, formatBytes(v.Bytes))
		}
		s.out.result(r, "gc --dry-run: %s; nothing was removed", gcCounts(r))
		return nil
	}
	r, err := s.CollectGarbage(c.Context, opts)
	if err != nil {
		return err
	}
	var copies, bytes int64
	for _, v := range r.Freed {
		s.out.textf("volume %s: %d blobs, %s freed", v.Volume, v.Blobs, formatBytes(v.Bytes))
		copies, bytes = copies+v.Blobs, bytes+v.Bytes
	}
	s.out.result(r, "gc: %s; removed %d blob copies, %s freed", gcCounts(r), copies, formatBytes(bytes))
	return nil
}

func gcCounts(r *store.GarbageReport) string {
	live := r.Live.Files + r.Live.Snapshots + r.Live.Explicit + r.Live.Held + r.Live.Young
	counts := fmt.Sprintf("%d blobs, %d live (%d used by files, %d by %d retained snapshots, "+
		"%d explicit stores, %d held by the mount, %d younger than %s), %d garbage",
		r.Blobs, live, r.Live.Files, r.Live.Snapshots, r.Snapshots, r.Live.Explicit, r.Live.Held, r.Live.Young, r.Grace, r.Garbage)
	if r.Kept > 0 {
		counts += fmt.Sprintf(" (%d of it made live again by writers meanwhile, and kept)", r.Kept)
	}
	return counts
}

// gcPauseAfter is the test hook of gcPauseVar: 0, none.
type gcPauseAfter int64

func gcPause(e *env) (gcPauseAfter, error) {
	v := e.getenv(gcPauseVar)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, usageError("%s=%q: a count of 1 or more", gcPauseVar, v)
	}
	return gcPauseAfter(n), nil
}

// hook stops the collection for good (until its context ends) after the
// chosen number of removals.
func (n gcPauseAfter) hook(out *output) func(context.Context, int64) {
	if n == 0 {
		return nil
	}
	return func(ctx context.Context, removed int64) {
		if removed == int64(n) {
			out.notef("%s: paused after %d removals", gcPauseVar, removed)
			<-ctx.Done()
		}
	}
}

func (localHost) fuse() store.Mount { return nil }

// fuse is the daemon's mount: a gc it runs keeps what the mount holds and
// drops the kernel's entries of what it removed.
func (h *daemonHost) fuse() store.Mount { return h.daemon.fuse }
