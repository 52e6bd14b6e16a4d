package main

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/store"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show what is mounted where, the volumes, their last scrubs, and running jobs",
		Description: "Needs no key. While the store is mounted, its mount daemon answers, and lists\n" +
			"the commands it is running for clients (scrubs, replicates, puts) with their progress.",
		Action: status,
	}
}

type statusReport struct {
	Store string `json:"store"`
	// ReadOnly: the store cannot be written, and is read as it is.
	ReadOnly bool                `json:"read_only"`
	Mount    *mountStatus        `json:"mount,omitempty"`
	Volumes  []any               `json:"volumes"`
	Scrubs   []store.ScrubState  `json:"scrubs"`
	Copies   *store.CopiesStatus `json:"copies"`
	// Replication: the mount's background replication (none unmounted).
	Replication *store.ReplicatorState `json:"replication,omitempty"`
	Jobs        []jobStatus            `json:"jobs"`
}

type mountStatus struct {
	Mountpoint string    `json:"mountpoint"`
	Volume     string    `json:"volume"`      // the write volume
	OnlyVolume bool      `json:"only_volume"` // the mount shows that volume alone (else every volume)
	ReadOnly   bool      `json:"read_only"`
	PID        int       `json:"pid"`
	Since      time.Time `json:"since"`
}

type jobStatus struct {
	Command  string    `json:"command"`
	Started  time.Time `json:"started"`
	Progress string    `json:"progress"`
	args     []string
}

func status(c *cli.Context) error {
	s, err := openSession(c, noKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	host := envOf(c).host
	report := statusReport{Store: s.Dir(), ReadOnly: s.ReadOnly(), Mount: host.mount(), Jobs: host.jobs()}
	volumes, err := s.Volumes(c.Context)
	if err != nil {
		return err
	}
	for _, v := range volumes {
		report.Volumes = append(report.Volumes, v)
		state, err := s.ScrubState(c.Context, v.ID)
		if err == nil {
			report.Scrubs = append(report.Scrubs, *state)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if report.Copies, err = s.CopiesStatus(c.Context); err != nil {
		return err
	}
	if r := host.replicator(); r != nil {
		state := r.State()
		report.Replication = &state
	}
	if s.out.json {
		s.out.result(report, "")
		return nil
	}
	s.printStatus(c, volumes, &report)
	return nil
}

func (s *session) printStatus(c *cli.Context, volumes []*badger.Volume, report *statusReport) {
	out := s.out
	if report.ReadOnly {
		out.textf("store:    %s (cannot be written: opened read-only)", report.Store)
	} else {
		out.textf("store:    %s", report.Store)
	}
	if m := report.Mount; m != nil {
		mode := "read-write"
		if m.ReadOnly {
			mode = "read-only"
		}
		what := fmt.Sprintf("every volume (writes go to %s)", m.Volume)
		if m.OnlyVolume {
			what = "volume " + m.Volume
		}
		out.textf("mounted:  %s at %s, %s, by pid %d since %s", what, m.Mountpoint, mode, m.PID, m.Since.Format(time.RFC3339))
	} else {
		out.textf("mounted:  no")
	}
	out.textf("volumes:")
	for _, v := range volumes {
		out.textf("  %-12s %10d blobs %12s  %s", v.Label, v.BlobCount, formatBytes(v.Bytes), s.whereAndState(v))
	}
	out.textf("scrubs:")
	if len(report.Scrubs) == 0 {
		out.textf("  none yet")
	}
	for i := range report.Scrubs {
		out.textf("  %s: %s", report.Scrubs[i].Volume, describeScrub(&report.Scrubs[i]))
	}
	s.printCopies(c, report)
	out.textf("jobs:")
	if len(report.Jobs) == 0 {
		out.textf("  none running")
	}
	for _, j := range report.Jobs {
		out.textf("  %s (since %s): %s", j.Command, j.Started.Format(time.RFC3339), j.Progress)
	}
}

// printCopies says how many blobs are below their copies policy, and what
// the mount's background replication did.
func (s *session) printCopies(c *cli.Context, report *statusReport) {
	out, copies := s.out, report.Copies
	if !copies.Walked {
		out.textf("copies:   one copy of every blob, and every blob has one (no policy asks for more: see stofuse collection set)")
		return
	}
	out.textf("copies:   %d of %d blobs below their policy (store's policy: %s)", copies.Below, copies.Blobs, s.describePolicy(c, copies.Default))
	for _, coll := range copies.Collections {
		name, policy := coll.Name, s.describePolicy(c, coll.Policy)
		if name == "" {
			name = "(no collection)"
		}
		if !coll.Own {
			policy += " (store's)"
		}
		out.textf("  collection %-12s %-28s %10d blobs, %d below policy", name, policy, coll.Blobs, coll.Below)
	}
	for _, v := range copies.Volumes {
		if v.Below > 0 {
			out.textf("  volume %-16s holds %d of them", v.Volume, v.Below)
		}
	}
	r := report.Replication
	switch {
	case r == nil && report.Mount == nil && copies.Below > 0:
		out.textf("  not mounted: `stofuse replicate --policy` makes the copies")
	case r == nil:
	case r.Running:
		out.textf("  replication: copying (%d copies made since the mount, %d failed)", r.Copied, r.Failed)
	case r.Passes == 0:
		out.textf("  replication: starting")
	default:
		out.textf("  replication: %d copies made since the mount (%s), %d failed; last look %s",
			r.Copied, formatBytes(r.Bytes), r.Failed, r.LastPass.Format(time.RFC3339))
	}
}
