package main

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/store"
)

func scrubCommand() *cli.Command {
	return &cli.Command{
		Name:      "scrub",
		Usage:     "check stored blobs for damage, without any key",
		ArgsUsage: "[REF...]",
		Description: "Reads every blob a volume should hold (or the REFs given) and checks the stored\n" +
			"bytes against the CRC-32C recorded when they were written. Reports, one line each,\n" +
			"blobs that are DAMAGED (with the frame, where the format can tell), MISSING (the\n" +
			"metadata lists them, the volume does not hold them), and ORPHAN files (stored, but\n" +
			"unknown to the metadata; left by a crash, harmless). Exit code 1 when anything is\n" +
			"damaged or missing. Needs no key.\n\n" +
			"With --repair, each DAMAGED or MISSING copy is replaced by a byte-for-byte copy of\n" +
			"one on another volume that passes the same check (checked again on the way, and\n" +
			"durable before it is recorded; a copy that checks out is never overwritten), and\n" +
			"a REPAIRED line says from where. A blob with no good copy on any volume is left as\n" +
			"it is. Exit code 0 when everything found was repaired.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "volume", Usage: "scrub only this volume (name or id); default: every volume"},
			&cli.BoolFlag{Name: "resume", Usage: "go on with an interrupted scrub where it stopped"},
			&cli.BoolFlag{Name: "repair", Usage: "replace damaged and missing copies from good copies on other volumes"},
			&cli.BoolFlag{Name: "status", Usage: "show each volume's last scrub (and one running now), and scrub nothing"},
			limitRateFlag,
		},
		Action: scrub,
	}
}

func scrub(c *cli.Context) error {
	refs, err := parseRefs(c)
	if err != nil {
		return err
	}
	rate, err := limitRate(c)
	if err != nil {
		return err
	}
	s, err := openSession(c, noKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	volumes, err := s.ChosenVolumes(c.Context, c.String("volume"))
	if err != nil {
		return err
	}
	if c.Bool("status") {
		return s.scrubStatus(c, volumes)
	}
	failed := false
	for _, v := range volumes {
		summary := s.ScrubVolume(c.Context, v, store.ScrubOptions{Refs: refs, Resume: c.Bool("resume"), Repair: c.Bool("repair"),
			ReadRate: rate, Found: s.printFinding, Reporter: s.out.reporter(), Observer: envOf(c).host.observer()})
		if c.Context.Err() != nil {
			return c.Context.Err()
		}
		s.out.result(map[string]store.ScrubSummary{"summary": summary}, "scrubbed volume %s: %d blobs, %s checked; %s",
			summary.Volume, summary.Blobs, formatBytes(summary.Bytes), scrubCounts(summary, c.Bool("repair")))
		failed = failed || summary.Failed()
	}
	if failed {
		return errFindings
	}
	return nil
}

func (s *session) printFinding(f store.Finding) {
	if f.Ref.IsZero() {
		s.out.result(f, "%-8s volume %s: %s", upper(string(f.Kind)), f.Volume, f.Error)
		return
	}
	s.out.result(f, "%-8s %s  volume %s: %s", upper(string(f.Kind)), f.Ref, f.Volume, f.Error)
}

// scrubStatus prints each volume's last scrub, and the scrubs running now.
func (s *session) scrubStatus(c *cli.Context, volumes []*badger.Volume) error {
	for _, v := range volumes {
		state, err := s.ScrubState(c.Context, v.ID)
		if errors.Is(err, fs.ErrNotExist) {
			s.out.result(map[string]string{"volume": v.Label, "scrub": "never"}, "volume %s: never scrubbed", v.Label)
			continue
		}
		if err != nil {
			return err
		}
		s.out.result(state, "volume %s: %s", v.Label, describeScrub(state))
		for _, f := range state.Findings {
			s.out.textf("  %-8s %s  %s", upper(string(f.Kind)), f.Ref, f.Error)
		}
	}
	for _, j := range envOf(c).host.jobs() {
		if slices.Contains(j.args, "scrub") {
			s.out.textf("running now: %s: %s", j.Command, j.Progress)
		}
	}
	return nil
}

// scrubCounts is a scrub summary's findings in words; the repairs are
// counted when repairing (or when there were any).
func scrubCounts(sum store.ScrubSummary, repairing bool) string {
	repaired := ""
	if repairing || sum.Repaired > 0 {
		repaired = fmt.Sprintf(", %d repaired", sum.Repaired)
	}
	return fmt.Sprintf("%d damaged, %d missing, %d orphans, %d errors%s; %d used by no file",
		sum.Damaged, sum.Missing, sum.Orphans, sum.Failures, repaired, sum.Unused)
}

func describeScrub(state *store.ScrubState) string {
	sum := state.Summary
	counts := fmt.Sprintf("%d blobs, %s; %s", sum.Blobs, formatBytes(sum.Bytes), scrubCounts(sum, false))
	switch {
	case !state.Finished.IsZero():
		return fmt.Sprintf("last scrub %s to %s: %s", state.Started.Format(time.RFC3339), state.Finished.Format(time.RFC3339), counts)
	case state.Interrupted:
		return fmt.Sprintf("scrub started %s, interrupted at %s after %s (go on with stofuse scrub --resume)",
			state.Started.Format(time.RFC3339), state.Updated.Format(time.RFC3339), counts)
	}
	return fmt.Sprintf("scrub started %s, running or stopped without a trace at %s after %s (stofuse scrub --resume goes on)",
		state.Started.Format(time.RFC3339), state.Updated.Format(time.RFC3339), counts)
}

// limitRateFlag paces the reads of scrub and replicate.
var limitRateFlag = &cli.StringFlag{Name: "limit-rate", Usage: "read at most this many bytes per second, e.g. 50M (K, M, G: powers of 1024)"}

// limitRate is --limit-rate in bytes per second (0: no limit).
func limitRate(c *cli.Context) (float64, error) {
	limit := c.String("limit-rate")
	if limit == "" {
		return 0, nil
	}
	perSecond, err := store.ParseRate(limit)
	if err != nil {
		return 0, usageError("--limit-rate: %v", err)
	}
	return perSecond, nil
}
