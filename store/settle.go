package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
)

// SettleReport says what Open found of an unclean stop (a crash or a
// power loss since the last group commit) and what it did about it: the
// journal names the blobs and files whose durability was not yet known;
// each blob was checked on its volume (present, with the recorded size and
// CRC-32C; no key needed), and each file whose content did not survive
// was put back to the content it had before, or removed if it had none.
type SettleReport struct {
	// Clean: the last stop was clean (the journal was empty); nothing was
	// checked, and the rest is empty.
	Clean bool `json:"clean"`
	// Checked counts the blob copies checked; Lost are those found
	// missing or damaged, now removed from the metadata (and a damaged
	// copy's bytes from its volume).
	Checked int        `json:"checked"`
	Lost    []LostCopy `json:"lost,omitempty"`
	// Kept counts the files whose new content survived.
	Kept int `json:"kept"`
	// Reverted are the files (collection/dir/name) that have the content
	// they had before their last change again (a file replaced by a new
	// one renamed over it, as rsync and editors do, is back under its
	// name); Removed the files, new since the last commit, whose content
	// was lost (and that replaced nothing).
	Reverted []string `json:"reverted,omitempty"`
	Removed  []string `json:"removed,omitempty"`
	// Gone counts the journaled files removed since: nothing to do.
	Gone int `json:"gone"`
	// Unchecked are the blob copies that could not be checked (their
	// volume is not mounted, or the check failed), and UncheckedFiles the
	// files whose content is one of them: their journal entries are left
	// for the next open, which checks them again.
	Unchecked      []UncheckedCopy `json:"unchecked,omitempty"`
	UncheckedFiles []string        `json:"unchecked_files,omitempty"`
	// Collection is what was done with the copies an interrupted garbage
	// collection had condemned (nil: there were none).
	Collection *CollectionFinish `json:"collection,omitempty"`
}

// LostCopy is a blob copy that did not survive an unclean stop.
type LostCopy struct {
	Ref     blobstore.Ref `json:"ref"`
	Volume  string        `json:"volume"`
	Damaged bool          `json:"damaged"` // false: missing
	// Dropped: no volume holds the blob any more; its record is gone.
	Dropped bool `json:"dropped"`
}

// UncheckedCopy is a blob copy Open could not check, and why.
type UncheckedCopy struct {
	Ref    blobstore.Ref `json:"ref"`
	Volume string        `json:"volume"`
	Why    string        `json:"why"`
}

// String sums the report up in a line (for a log).
func (r *SettleReport) String() string {
	if r.Clean {
		return "the last stop was clean"
	}
	var parts []string
	if c := r.Collection; c != nil {
		part := fmt.Sprintf("finished an interrupted garbage collection: removed %d blob copies it had condemned (%d bytes)", c.Removed, c.Bytes)
		if c.Reprieved > 0 {
			part += fmt.Sprintf(", kept %d stored again since", c.Reprieved)
		}
		if c.Left != "" {
			part += "; the rest is left for the next open or gc: " + c.Left
		}
		parts = append(parts, part)
		if r.journalEmpty() {
			return strings.Join(parts, "; ")
		}
	}
	parts = append(parts, fmt.Sprintf("after an unclean stop: checked %d blobs written since the last commit, %d lost", r.Checked, len(r.Lost)))
	if len(r.Reverted) > 0 {
		parts = append(parts, fmt.Sprintf("%d files put back to their content before (%s)", len(r.Reverted), listSome(r.Reverted)))
	}
	if len(r.Removed) > 0 {
		parts = append(parts, fmt.Sprintf("%d new files removed, their content lost (%s)", len(r.Removed), listSome(r.Removed)))
	}
	parts = append(parts, fmt.Sprintf("%d files kept", r.Kept))
	if len(r.Unchecked) > 0 {
		volumes := map[string]bool{}
		for _, u := range r.Unchecked {
			volumes[u.Volume] = true
		}
		names := make([]string, 0, len(volumes))
		for name := range volumes {
			names = append(names, name)
		}
		sort.Strings(names)
		parts = append(parts, fmt.Sprintf("%d blobs (%d files) not checked, left for the next open: volumes %s not available",
			len(r.Unchecked), len(r.UncheckedFiles), strings.Join(names, ", ")))
	}
	return strings.Join(parts, "; ")
}

// journalEmpty: the report has nothing from the journal (an open that
// found only an interrupted garbage collection).
func (r *SettleReport) journalEmpty() bool {
	return r.Checked == 0 && len(r.Lost) == 0 && r.Kept == 0 && len(r.Reverted) == 0 && len(r.Removed) == 0 &&
		r.Gone == 0 && len(r.Unchecked) == 0 && len(r.UncheckedFiles) == 0
}

func listSome(names []string) string {
	const most = 5
	if len(names) <= most {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:most], ", ") + fmt.Sprintf(" and %d more", len(names)-most)
}

// Settled returns what Open found of an unclean stop and did (see
// SettleReport); a store made by Create, or opened after a clean stop,
// reports Clean.
func (s *Store) Settled() SettleReport {
	if s.settled == nil {
		return SettleReport{Clean: true}
	}
	return *s.settled
}

// settle runs badger.Store.Settle with the volumes mounted, removes the
// bytes of the damaged copies it found, and keeps the report.
func (s *Store) settle(ctx context.Context) error {
	result, err := s.meta.Settle(ctx, s.checkCopy)
	if err != nil {
		return fmt.Errorf("checking what an unclean stop left: %w", err)
	}
	report := &SettleReport{Clean: result.Clean}
	for _, b := range result.Blobs {
		s.settledBlob(ctx, report, b)
	}
	for _, f := range result.Files {
		switch f.Outcome {
		case badger.FileKept:
			report.Kept++
		case badger.FileReverted:
			report.Reverted = append(report.Reverted, f.Path)
		case badger.FileRemoved:
			report.Reverted = append(report.Reverted, f.Restored...)
			if !slices.Contains(f.Restored, f.Path) {
				report.Removed = append(report.Removed, f.Path)
			}
		case badger.FileGone:
			report.Gone++
		case badger.FileUnchecked:
			report.UncheckedFiles = append(report.UncheckedFiles, f.Path)
		}
	}
	s.settled = report
	return nil
}

func (s *Store) settledBlob(ctx context.Context, report *SettleReport, b badger.SettledBlob) {
	volume := s.VolumeName(ctx, b.Volume)
	switch b.State {
	case badger.CopyIntact:
		report.Checked++
	case badger.CopyMissing, badger.CopyDamaged:
		report.Checked++
		report.Lost = append(report.Lost, LostCopy{Ref: b.Ref, Volume: volume, Damaged: b.State == badger.CopyDamaged, Dropped: b.Dropped})
		if b.State == badger.CopyDamaged && !s.ReadOnly() {
			// What is left of it is no blob: a partial copy would only
			// confuse a scrub or a recovery.
			if driver, err := s.ctl.Driver(b.Volume); err == nil {
				driver.Remove(ctx, b.Ref)
			}
		}
	case badger.CopyUnchecked:
		why := "volume not available"
		if b.Err != nil {
			why = b.Err.Error()
		} else if err := s.unavailable.get(b.Volume); err != nil {
			why = err.Error()
		}
		report.Unchecked = append(report.Unchecked, UncheckedCopy{Ref: b.Ref, Volume: volume, Why: why})
	}
}

// checkCopy is Settle's check of a blob copy: size and CRC-32C, no key.
func (s *Store) checkCopy(ctx context.Context, meta *diskaccess.BlobMeta, volumeID int) (badger.CopyState, error) {
	driver, err := s.ctl.Driver(volumeID)
	if err != nil {
		return badger.CopyUnchecked, nil // not mounted: said by Unavailable
	}
	err = diskaccess.CheckStored(ctx, driver, meta)
	switch {
	case err == nil:
		return badger.CopyIntact, nil
	case errors.Is(err, fs.ErrNotExist):
		return badger.CopyMissing, nil
	case errors.Is(err, diskaccess.ErrCorrupt):
		return badger.CopyDamaged, err
	}
	return badger.CopyUnchecked, err
}
