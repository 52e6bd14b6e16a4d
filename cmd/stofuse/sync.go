package main

import (
	"context"
	"time"

	"github.com/urfave/cli/v2"
)

// defaultCommitInterval is how long a file closed in a mount may wait to
// survive a power loss (it survives a kill of the daemon at once): the
// group commit's period, as ext4's commit= is its journal's.
const defaultCommitInterval = 5 * time.Second

func syncCommand() *cli.Command {
	return &cli.Command{
		Name:  "sync",
		Usage: "make everything written to the store durable now",
		Description: "Runs a group commit: the volumes' pending fsyncs, then the metadata's. Through a\n" +
			"running mount, once it returns every file closed in the mount before survives a\n" +
			"power loss (a mount commits by itself every --commit-interval, and at fsync(2)).\n" +
			"sync(1) and syncfs(2) do not reach a FUSE mount on Linux: use this.",
		Action: syncStore,
	}
}

func syncStore(c *cli.Context) error {
	if c.NArg() != 0 {
		return usageError("usage: stofuse sync")
	}
	s, err := openSession(c, noKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	start := time.Now()
	if err := s.Sync(c.Context); err != nil {
		return err
	}
	elapsed := time.Since(start)
	s.out.result(map[string]any{"store": s.Dir(), "elapsed_ms": elapsed.Milliseconds()},
		"synced %s in %s", s.Dir(), elapsed.Round(time.Millisecond))
	return nil
}

// commitEvery runs the group commit every interval until stop is called,
// which runs a last one. Failures go to the log: the next commit tries
// again what failed.
func (s *session) commitEvery(interval time.Duration) (stop func()) {
	return every(interval, func() {
		if err := s.Sync(context.Background()); err != nil {
			s.out.warnf("group commit: %v (files closed since the last commit may not survive a power loss yet)", err)
		}
	})
}
