package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/time/rate"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
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
			"damaged or missing. Needs no key.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "volume", Usage: "scrub only this volume (name or id); default: every volume"},
			&cli.BoolFlag{Name: "resume", Usage: "go on with an interrupted scrub where it stopped"},
			&cli.BoolFlag{Name: "status", Usage: "show each volume's last scrub (and one running now), and scrub nothing"},
			limitRateFlag,
		},
		Action: scrub,
	}
}

// finding is one line of a scrub report.
type finding struct {
	Kind   string        `json:"finding"` // damaged, missing, orphan, unavailable, error
	Ref    blobstore.Ref `json:"ref,omitzero"`
	Volume string        `json:"volume"`
	Frame  *int          `json:"frame,omitempty"`
	Region string        `json:"region,omitempty"`
	Error  string        `json:"error,omitempty"`
	Size   int64         `json:"size,omitempty"`
}

type scrubSummary struct {
	Volume   string `json:"volume"`
	Blobs    int64  `json:"blobs"`
	Bytes    int64  `json:"bytes"`
	Damaged  int    `json:"damaged"`
	Missing  int    `json:"missing"`
	Orphans  int    `json:"orphans"`
	Failures int    `json:"errors"`
	// Unused counts the blobs no file under files/ uses (not a failure:
	// blobs are kept; there is no garbage collection yet).
	Unused int `json:"unused"`
}

// scrubState is a volume's last full scrub, kept in the store as it goes,
// so that an interrupted scrub can resume and --status can report it.
type scrubState struct {
	Volume      string        `json:"volume"`
	Started     time.Time     `json:"started"`
	Updated     time.Time     `json:"updated"`
	Finished    time.Time     `json:"finished,omitzero"`
	Interrupted bool          `json:"interrupted,omitempty"`
	Position    blobstore.Ref `json:"position"` // the last blob checked
	Summary     scrubSummary  `json:"summary"`
	Findings    []finding     `json:"findings,omitempty"` // the first maxFindings
}

// maxFindings bounds the findings a scrub state keeps.
const maxFindings = 1000

func scrubStateName(volumeID int) string { return fmt.Sprintf("scrub/%d", volumeID) }

// saveEvery is how often a running scrub records where it is.
const saveEvery = 2 * time.Second

func (s scrubSummary) failed() bool { return s.Damaged+s.Missing+s.Failures > 0 }

func scrub(c *cli.Context) error {
	refs, err := parseRefs(c)
	if err != nil {
		return err
	}
	ctx, err := limitedContext(c)
	if err != nil {
		return err
	}
	s, err := openSession(c, noKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	volumes, err := s.chosenVolumes(c.Context, c.String("volume"))
	if err != nil {
		return err
	}
	if c.Bool("status") {
		return s.scrubStatus(c, volumes)
	}
	failed := false
	for _, v := range volumes {
		summary := s.scrubVolume(ctx, v, refs, c.Bool("resume"))
		if c.Context.Err() != nil {
			return c.Context.Err()
		}
		s.out.result(map[string]scrubSummary{"summary": summary},
			"scrubbed volume %s: %d blobs, %s checked; %d damaged, %d missing, %d orphans, %d errors; %d used by no file",
			summary.Volume, summary.Blobs, formatBytes(summary.Bytes), summary.Damaged, summary.Missing, summary.Orphans, summary.Failures, summary.Unused)
		failed = failed || summary.failed()
	}
	if failed {
		return errFindings
	}
	return nil
}

// chosenVolumes is the named volume, or every volume.
func (s *session) chosenVolumes(ctx context.Context, name string) ([]*badger.Volume, error) {
	if name != "" {
		v, err := s.meta.Volume(ctx, name)
		if err != nil {
			return nil, usageError("no volume %q (see stofuse volume ls)", name)
		}
		return []*badger.Volume{v}, nil
	}
	return s.meta.Volumes(ctx)
}

// scrubVolume scrubs the given refs of a volume, or (no refs) all of it,
// keeping its state in the store; resume goes on after an interrupted one.
func (s *session) scrubVolume(ctx context.Context, v *badger.Volume, refs []blobstore.Ref, resume bool) scrubSummary {
	state := &scrubState{Volume: v.Label, Started: time.Now().UTC(), Summary: scrubSummary{Volume: v.Label}}
	if len(refs) == 0 && resume {
		var saved scrubState
		if err := s.meta.State(ctx, scrubStateName(v.ID), &saved); err == nil && saved.Finished.IsZero() {
			state = &saved
			state.Interrupted = false
			s.out.notef("resuming the scrub of volume %s after %d blobs (started %s)", v.Label, state.Summary.Blobs, state.Started.Format(time.RFC3339))
		}
	}
	summary := &state.Summary
	report := func(f finding) {
		f.Volume = v.Label
		switch f.Kind {
		case "damaged":
			summary.Damaged++
		case "missing":
			summary.Missing++
		case "orphan":
			summary.Orphans++
		default:
			summary.Failures++
		}
		if len(state.Findings) < maxFindings {
			state.Findings = append(state.Findings, f)
		}
		if f.Ref.IsZero() {
			s.out.result(f, "%-8s volume %s: %s", upper(f.Kind), v.Label, f.Error)
			return
		}
		s.out.result(f, "%-8s %s  volume %s: %s", upper(f.Kind), f.Ref, v.Label, f.Error)
	}
	if why := s.unavailable.get(v.ID); why != nil {
		report(finding{Kind: "unavailable", Error: why.Error()})
		return *summary
	}
	p := s.out.startProgress("scrub "+v.Label, v.BlobCount, v.Bytes)
	p.add(summary.Blobs, summary.Bytes)
	defer p.finish()
	lastSave := time.Now()
	check := func(ref blobstore.Ref) {
		checked, err := s.ctl.Scrub(ctx, ref, v.ID)
		if ctx.Err() != nil {
			return // interrupted: this blob is checked again on --resume
		}
		p.add(1, checked)
		summary.Blobs++
		summary.Bytes += checked
		if err != nil {
			report(scrubFinding(ref, err))
		}
		if r := s.remote; r != nil {
			r.daemon.metrics.scrubbed(v.Label, err)
		}
		if files, err := s.meta.FilesUsing(ctx, ref); err == nil && files == 0 {
			summary.Unused++
		}
		if len(refs) == 0 {
			state.Position = ref
			if time.Since(lastSave) > saveEvery {
				s.saveScrub(v, state)
				lastSave = time.Now()
			}
		}
	}
	if len(refs) > 0 {
		for _, ref := range refs {
			check(ref)
		}
		return *summary
	}
	if err := s.scrubAll(ctx, v, state.Position, check, report); err != nil && ctx.Err() == nil {
		report(finding{Kind: "error", Error: err.Error()})
	}
	if ctx.Err() != nil {
		state.Interrupted = true
	} else {
		state.Finished = time.Now().UTC()
	}
	s.saveScrub(v, state)
	return *summary
}

// saveScrub records a scrub's state; it is saved even when the command's
// context is cancelled (that is when it matters most).
func (s *session) saveScrub(v *badger.Volume, state *scrubState) {
	state.Updated = time.Now().UTC()
	if err := s.meta.SetState(context.Background(), scrubStateName(v.ID), state); err != nil {
		s.out.warnf("could not record the scrub's progress: %v", err)
	}
}

// scrubAll checks every blob the metadata lists on the volume, and walks
// the volume's own listing alongside (both are in ref order) to find the
// files the metadata does not know.
func (s *session) scrubAll(ctx context.Context, v *badger.Volume, after blobstore.Ref, check func(blobstore.Ref), report func(finding)) error {
	driver, err := openDriver(ctx, v)
	if err != nil {
		return err
	}
	var listErr error
	stored, stop := iter.Pull2(listStored(ctx, driver, &listErr))
	defer stop()
	nextStored, storedSize, more := stored()
	for more && !after.IsZero() && nextStored.Compare(after) <= 0 {
		nextStored, storedSize, more = stored() // checked before the interruption
	}
	orphansBefore := func(ref blobstore.Ref, all bool) {
		for more && (all || nextStored.Compare(ref) < 0) {
			if !diskaccess.IsVolumeDescriptor(nextStored) {
				report(finding{Kind: "orphan", Ref: nextStored, Size: storedSize, Error: "stored, but not in the metadata (left by an interrupted write?)"})
			}
			nextStored, storedSize, more = stored()
		}
	}
	err = s.meta.ListVolumeBlobs(ctx, v.ID, after, func(ref blobstore.Ref) error {
		orphansBefore(ref, false)
		if more && nextStored == ref {
			nextStored, storedSize, more = stored()
		}
		check(ref)
		return nil
	})
	if err != nil {
		return err
	}
	orphansBefore(blobstore.Ref{}, true)
	return listErr
}

// listStored adapts a driver's List to an iterator; a listing error is
// left in *errp.
func listStored(ctx context.Context, driver blobstore.Driver, errp *error) iter.Seq2[blobstore.Ref, int64] {
	return func(yield func(blobstore.Ref, int64) bool) {
		stopped := errors.New("stopped")
		err := driver.List(ctx, func(info blobstore.BlobInfo) error {
			if !yield(info.Ref, info.Size) {
				return stopped
			}
			return nil
		})
		if err != nil && err != stopped {
			*errp = err
		}
	}
}

func scrubFinding(ref blobstore.Ref, err error) finding {
	var corrupt *diskaccess.CorruptBlobError
	switch {
	case errors.Is(err, diskaccess.ErrMissing):
		return finding{Kind: "missing", Ref: ref, Error: "the metadata lists it, the volume does not hold it"}
	case errors.As(err, &corrupt):
		f := finding{Kind: "damaged", Ref: ref, Region: string(corrupt.Region), Error: corrupt.Err.Error()}
		if corrupt.Frame >= 0 {
			f.Frame = &corrupt.Frame
			f.Error = "frame " + itoa(corrupt.Frame) + ": " + f.Error
		} else {
			f.Error = string(corrupt.Region) + ": " + f.Error
		}
		return f
	}
	return finding{Kind: "error", Ref: ref, Error: err.Error()}
}

// scrubStatus prints each volume's last scrub, and the scrubs running now.
func (s *session) scrubStatus(c *cli.Context, volumes []*badger.Volume) error {
	for _, v := range volumes {
		var state scrubState
		err := s.meta.State(c.Context, scrubStateName(v.ID), &state)
		if errors.Is(err, fs.ErrNotExist) {
			s.out.result(map[string]string{"volume": v.Label, "scrub": "never"}, "volume %s: never scrubbed", v.Label)
			continue
		}
		if err != nil {
			return err
		}
		s.out.result(state, "volume %s: %s", v.Label, describeScrub(&state))
		for _, f := range state.Findings {
			s.out.textf("  %-8s %s  %s", upper(f.Kind), f.Ref, f.Error)
		}
	}
	if r := remoteOf(c); r != nil {
		for _, j := range r.daemon.runningJobs() {
			if len(j.args) > 0 && slices.Contains(j.args, "scrub") && j != r.job {
				s.out.textf("running now: stofuse %s: %s", strings.Join(j.args, " "), j.progressLine())
			}
		}
	}
	return nil
}

func describeScrub(state *scrubState) string {
	sum := state.Summary
	counts := fmt.Sprintf("%d blobs, %s; %d damaged, %d missing, %d orphans, %d errors; %d used by no file",
		sum.Blobs, formatBytes(sum.Bytes), sum.Damaged, sum.Missing, sum.Orphans, sum.Failures, sum.Unused)
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

// limitedContext is the command's context, carrying --limit-rate's pace.
func limitedContext(c *cli.Context) (context.Context, error) {
	limit := c.String("limit-rate")
	if limit == "" {
		return c.Context, nil
	}
	perSecond, err := parseRate(limit)
	if err != nil {
		return nil, usageError("--limit-rate: %v", err)
	}
	return diskaccess.WithReadLimiter(c.Context, rate.NewLimiter(rate.Limit(perSecond), int(min(perSecond, 1<<20)))), nil
}

// parseRate parses a rate like 50M or 1.5G (bytes per second, powers of
// 1024; an optional "B", "/s" or "iB").
func parseRate(s string) (float64, error) {
	text := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "/s"), "B")
	text = strings.TrimSuffix(text, "i")
	scale := 1.0
	if n := len(text); n > 0 {
		if i := strings.IndexByte("KMGT", text[n-1]&^0x20); i >= 0 {
			scale = float64(int64(1) << (10 * (i + 1)))
			text = text[:n-1]
		}
	}
	value, err := strconv.ParseFloat(text, 64)
	if err != nil || value <= 0 {
		return 0, fmt.Errorf("%q is not a rate such as 50M", s)
	}
	return value * scale, nil
}
