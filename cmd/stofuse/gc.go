package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/store"
)

func gcCommand() *cli.Command {
	return &cli.Command{
		Name:  "gc",
		Usage: "find the blobs nothing keeps, and what removing them would free (--dry-run)",
		Description: "Finds, for the whole store, the blobs that are not live: used by no file of files/,\n" +
			"by no retained snapshot (its record, index, trees and files), not an explicit store\n" +
			"(see stofuse release), and older than --grace. It prints how many blobs and bytes\n" +
			"removing them would free on each volume. Only --dry-run exists yet: nothing is\n" +
			"removed. It runs with the store not mounted (a mount's daemon holds blobs the\n" +
			"metadata does not show), needs the key and every volume available.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Usage: "count what would be freed; remove nothing (required: removing is not implemented yet)"},
			&cli.DurationFlag{Name: "grace", Value: store.DefaultGrace, Usage: "keep every blob younger than this"},
		},
		Action: gcRun,
	}
}

func gcRun(c *cli.Context) error {
	if !c.Bool("dry-run") {
		return usageError("stofuse gc removes nothing yet: run stofuse gc --dry-run to see what it would free")
	}
	if c.Duration("grace") < 0 {
		return usageError("--grace %s: a duration of 0 or more", c.Duration("grace"))
	}
	s, err := openSession(c, needKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	if s.lent {
		return errors.New("stofuse gc runs only while the store is not mounted: the mount's daemon holds " +
			"blobs the metadata does not show yet (open files, files being written); unmount it first")
	}
	r, err := s.FindGarbage(c.Context, store.GCOptions{Grace: c.Duration("grace"), Reporter: s.out.reporter()})
	if err != nil {
		return err
	}
	live := r.Live.Files + r.Live.Snapshots + r.Live.Explicit + r.Live.Young
	for _, v := range r.Volumes {
		s.out.textf("volume %s: %d blobs, %s would be freed", v.Volume, v.Blobs, formatBytes(v.Bytes))
	}
	s.out.result(r, "%s", fmt.Sprintf("gc --dry-run: %d blobs, %d live (%d used by files, %d by %d retained snapshots, "+
		"%d explicit stores, %d younger than %s), %d garbage; nothing was removed",
		r.Blobs, live, r.Live.Files, r.Live.Snapshots, r.Snapshots, r.Live.Explicit, r.Live.Young, r.Grace, r.Garbage))
	return nil
}
