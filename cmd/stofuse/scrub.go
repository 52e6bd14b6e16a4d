package main

import (
	"context"
	"errors"
	"iter"

	"github.com/urfave/cli/v2"

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

func (s scrubSummary) failed() bool { return s.Damaged+s.Missing+s.Failures > 0 }

func scrub(c *cli.Context) error {
	refs, err := parseRefs(c)
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
	failed := false
	for _, v := range volumes {
		summary := s.scrubVolume(c.Context, v, refs)
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

func (s *session) scrubVolume(ctx context.Context, v *badger.Volume, refs []blobstore.Ref) scrubSummary {
	summary := scrubSummary{Volume: v.Label}
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
		if f.Ref.IsZero() {
			s.out.result(f, "%-8s volume %s: %s", upper(f.Kind), v.Label, f.Error)
			return
		}
		s.out.result(f, "%-8s %s  volume %s: %s", upper(f.Kind), f.Ref, v.Label, f.Error)
	}
	if why := s.unavailable[v.ID]; why != nil {
		report(finding{Kind: "unavailable", Error: why.Error()})
		return summary
	}
	p := s.out.startProgress("scrub "+v.Label, v.BlobCount, v.Bytes)
	defer p.finish()
	check := func(ref blobstore.Ref) {
		checked, err := s.ctl.Scrub(ctx, ref, v.ID)
		p.add(1, checked)
		summary.Blobs++
		summary.Bytes += checked
		if err != nil && ctx.Err() == nil {
			report(scrubFinding(ref, err))
		}
		if files, err := s.meta.FilesUsing(ctx, ref); err == nil && files == 0 {
			summary.Unused++
		}
	}
	if len(refs) > 0 {
		for _, ref := range refs {
			check(ref)
		}
		return summary
	}
	if err := s.scrubAll(ctx, v, check, report); err != nil && ctx.Err() == nil {
		report(finding{Kind: "error", Error: err.Error()})
	}
	return summary
}

// scrubAll checks every blob the metadata lists on the volume, and walks
// the volume's own listing alongside (both are in ref order) to find the
// files the metadata does not know.
func (s *session) scrubAll(ctx context.Context, v *badger.Volume, check func(blobstore.Ref), report func(finding)) error {
	driver, err := openDriver(ctx, v)
	if err != nil {
		return err
	}
	var listErr error
	stored, stop := iter.Pull2(listStored(ctx, driver, &listErr))
	defer stop()
	nextStored, storedSize, more := stored()
	orphansBefore := func(ref blobstore.Ref, all bool) {
		for more && (all || nextStored.Compare(ref) < 0) {
			if !diskaccess.IsVolumeDescriptor(nextStored) {
				report(finding{Kind: "orphan", Ref: nextStored, Size: storedSize, Error: "stored, but not in the metadata (left by an interrupted write?)"})
			}
			nextStored, storedSize, more = stored()
		}
	}
	err = s.meta.ListVolumeBlobs(ctx, v.ID, blobstore.Ref{}, func(ref blobstore.Ref) error {
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
		err := driver.List(ctx, func(ref blobstore.Ref, size int64) error {
			if !yield(ref, size) {
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
