package main

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
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
	Store   string       `json:"store"`
	Mount   *mountStatus `json:"mount,omitempty"`
	Volumes []any        `json:"volumes"`
	Scrubs  []scrubState `json:"scrubs"`
	Jobs    []jobStatus  `json:"jobs"`
}

type mountStatus struct {
	Mountpoint string    `json:"mountpoint"`
	Volume     string    `json:"volume"`
	ReadOnly   bool      `json:"read_only"`
	PID        int       `json:"pid"`
	Since      time.Time `json:"since"`
}

type jobStatus struct {
	Command  string    `json:"command"`
	Started  time.Time `json:"started"`
	Progress string    `json:"progress"`
}

func status(c *cli.Context) error {
	s, err := openSession(c, noKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	report := statusReport{Store: s.dir}
	if r := remoteOf(c); r != nil {
		d := r.daemon
		report.Mount = &mountStatus{Mountpoint: d.mountpoint, Volume: d.volume, ReadOnly: d.readOnly, PID: os.Getpid(), Since: d.started}
		for _, j := range d.runningJobs() {
			if j != r.job {
				report.Jobs = append(report.Jobs, jobStatus{Command: "stofuse " + strings.Join(j.args, " "), Started: j.started, Progress: j.progressLine()})
			}
		}
	}
	volumes, err := s.meta.Volumes(c.Context)
	if err != nil {
		return err
	}
	for _, v := range volumes {
		report.Volumes = append(report.Volumes, v)
		var state scrubState
		if err := s.meta.State(c.Context, scrubStateName(v.ID), &state); err == nil {
			report.Scrubs = append(report.Scrubs, state)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if s.out.json {
		s.out.result(report, "")
		return nil
	}
	s.printStatus(c, &report)
	return nil
}

func (s *session) printStatus(c *cli.Context, report *statusReport) {
	out := s.out
	out.textf("store:    %s", report.Store)
	if m := report.Mount; m != nil {
		mode := "read-write"
		if m.ReadOnly {
			mode = "read-only"
		}
		out.textf("mounted:  volume %s at %s, %s, by pid %d since %s", m.Volume, m.Mountpoint, mode, m.PID, m.Since.Format(time.RFC3339))
	} else {
		out.textf("mounted:  no")
	}
	volumes, _ := s.meta.Volumes(c.Context)
	out.textf("volumes:")
	for _, v := range volumes {
		state := ""
		if why := s.unavailable.get(v.ID); why != nil {
			state = " (unavailable: " + why.Error() + ")"
		}
		out.textf("  %-12s %10d blobs %12s  %s%s", v.Label, v.BlobCount, formatBytes(v.Bytes), where(v), state)
	}
	out.textf("scrubs:")
	if len(report.Scrubs) == 0 {
		out.textf("  none yet")
	}
	for i := range report.Scrubs {
		out.textf("  %s: %s", report.Scrubs[i].Volume, describeScrub(&report.Scrubs[i]))
	}
	out.textf("jobs:")
	if len(report.Jobs) == 0 {
		out.textf("  none running")
	}
	for _, j := range report.Jobs {
		out.textf("  %s (since %s): %s", j.Command, j.Started.Format(time.RFC3339), j.Progress)
	}
}
