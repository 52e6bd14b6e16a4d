package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/stofuse/stofuse/metastore/snapshot"
)

// ForgetResult is what Forget decided for one collection's snapshots.
type ForgetResult struct {
	Collection string              `json:"collection"`
	Policy     RetentionPolicy     `json:"policy"`
	DryRun     bool                `json:"dry_run,omitempty"`
	Snapshots  []SnapshotRetention `json:"snapshots"` // oldest first, as Snapshots lists them
	Kept       int                 `json:"kept"`
	Forgotten  int                 `json:"forgotten"` // or, with DryRun, that would be
}

// SnapshotRetention is one snapshot and what the policy decided for it.
type SnapshotRetention struct {
	Name string `json:"name"`
	Retention
	Volumes []string `json:"volumes"` // the volumes that name it (named it, once forgotten)
}

// Forget applies policy p to the snapshots of collection: the union of
// the snapshots named on every volume of the store, as one series. A
// snapshot the policy does not keep is forgotten on every volume that
// names it: its name is removed there, so that neither a mount's
// snapshots/, nor stofuse recover, nor a replicate from one volume to
// another brings it back. Its record, tree and index blobs stay until gc
// finds them used by nothing retained. The newest snapshot is always
// kept (so a collection's last snapshot, which the next one chains to,
// stays named).
//
// Every registered volume must be mounted (else nothing is changed, and
// the error says which is not): a volume left out would keep the names,
// and give them back. With dryRun nothing is changed. Forget holds the
// store's snapshot lock, so a snapshot taken meanwhile (a mount's) waits.
// A forget cut short leaves some names removed, on some volumes; running
// it again with the same policy finishes the job.
func (s *Store) Forget(ctx context.Context, collection string, p RetentionPolicy, dryRun bool) (*ForgetResult, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	c, err := s.Collection(ctx, collection)
	if err != nil {
		return nil, err
	}
	volumes, err := s.allVolumesMounted(ctx, "forget removes a snapshot's name from every volume, and a volume left out would give it back")
	if err != nil {
		return nil, err
	}
	s.snapshotMu.Lock()
	defer s.snapshotMu.Unlock()
	named := map[string][]int{} // record name -> the volumes that name it
	for _, id := range volumes {
		names, err := s.SnapshotNames(ctx, collection, id)
		if err != nil {
			return nil, fmt.Errorf("listing the snapshots of %s on volume %s: %w", collection, s.VolumeName(ctx, id), err)
		}
		for _, name := range names {
			named[name] = append(named[name], id)
		}
	}
	result := &ForgetResult{Collection: collection, Policy: p, DryRun: dryRun}
	if err := s.decide(ctx, named, p, result); err != nil {
		return nil, err
	}
	if dryRun {
		return result, nil
	}
	defer s.snapshotGen.Add(1) // a mount's listing of the names is out of date
	for _, sn := range result.Snapshots {
		if sn.Keep {
			continue
		}
		if err := s.forgetName(ctx, c.KeyID, sn.Name, named[sn.Name]); err != nil {
			return result, fmt.Errorf("forgetting snapshot %s of %s: %w", sn.Name, collection, err)
		}
	}
	return result, nil
}

// decide applies p to the named snapshots and fills in result.
func (s *Store) decide(ctx context.Context, named map[string][]int, p RetentionPolicy, result *ForgetResult) error {
	byTime := make(map[time.Time]string, len(named))
	times := make([]time.Time, 0, len(named))
	for name := range named {
		t, err := snapshot.ParseRecordName(name)
		if err != nil {
			return err // listRecordNames lists only valid names
		}
		byTime[t] = name
		times = append(times, t)
	}
	for _, r := range ApplyRetention(times, p) {
		name := byTime[r.Time]
		sn := SnapshotRetention{Name: name, Retention: r}
		ids := slices.Clone(named[name])
		slices.Sort(ids)
		for _, id := range ids {
			sn.Volumes = append(sn.Volumes, s.VolumeName(ctx, id))
		}
		if r.Keep {
			result.Kept++
		} else {
			result.Forgotten++
		}
		result.Snapshots = append(result.Snapshots, sn)
	}
	slices.Reverse(result.Snapshots) // ApplyRetention's are newest first
	return nil
}

// forgetName removes a snapshot's name from each of volumes; a name gone
// already is no error.
func (s *Store) forgetName(ctx context.Context, keyID, name string, volumes []int) error {
	for _, id := range volumes {
		driver, err := s.ctl.Driver(id)
		if err != nil {
			return err
		}
		err = driver.RemoveObject(ctx, recordObject(keyID, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("volume %s: %w", s.VolumeName(ctx, id), err)
		}
	}
	return nil
}

// allVolumesMounted returns the ids of every registered volume, or, if
// one is not mounted, an error saying which and why the work (why) needs
// them all.
func (s *Store) allVolumesMounted(ctx context.Context, why string) ([]int, error) {
	all, err := s.Volumes(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]int, 0, len(all))
	for _, v := range all {
		if reason := s.unavailable.get(v.ID); reason != nil {
			return nil, fmt.Errorf("%w; nothing was changed: %s", reason, why)
		}
		ids = append(ids, v.ID)
	}
	return ids, nil
}
