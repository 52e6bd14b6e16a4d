package store

import (
	"context"

	"github.com/stofuse/stofuse/metastore/badger"
)

// CopiesStatus is how many blobs are below their copies policy.
type CopiesStatus struct {
	Default badger.CopiesPolicy `json:"default"`
	// Walked: the blob records were walked to count. They are not while
	// every policy is one copy on any volume (nothing is below it): Blobs
	// and the collections' counts are then 0.
	Walked      bool               `json:"walked"`
	Blobs       int64              `json:"blobs"`
	Below       int64              `json:"below_policy"`
	Collections []CollectionCopies `json:"collections"`
	Volumes     []VolumeCopies     `json:"volumes"`
}

// CollectionCopies counts one collection's blobs (those its policy
// decides) and those of them below it.
type CollectionCopies struct {
	Name   string              `json:"name"` // "": blobs of no collection
	Policy badger.CopiesPolicy `json:"policy"`
	Own    bool                `json:"own_policy"` // false: the store's
	Blobs  int64               `json:"blobs"`
	Below  int64               `json:"below_policy"`
}

// VolumeCopies counts the blobs a volume holds that are below their
// policy (copies of them are still to be made from somewhere).
type VolumeCopies struct {
	Volume string `json:"volume"`
	Below  int64  `json:"below_policy"`
}

// CopiesStatus counts the blobs below their copies policy, per collection
// and per volume, in one walk of the blob records (none if no policy asks
// for more than one copy on any volume).
func (s *Store) CopiesStatus(ctx context.Context) (*CopiesStatus, error) {
	plan, err := s.copiesPlan(ctx)
	if err != nil {
		return nil, err
	}
	status := &CopiesStatus{Default: plan.def.CopiesPolicy, Walked: !plan.trivial()}
	counts := map[*collectionPolicy]*CollectionCopies{}
	count := func(p *collectionPolicy) *CollectionCopies {
		if counts[p] == nil {
			counts[p] = &CollectionCopies{Name: p.name, Policy: p.CopiesPolicy, Own: p.own}
		}
		return counts[p]
	}
	for _, c := range plan.collections {
		count(c)
	}
	byVolume := map[int]int64{}
	if status.Walked {
		err = s.meta.EachBlobUse(ctx, func(use badger.BlobUse) error {
			policy, err := s.policyOf(ctx, plan, &use)
			if err != nil {
				return err
			}
			c := count(policy)
			c.Blobs++
			status.Blobs++
			if copiesHeld(policy, use.Volumes) < policy.Copies {
				c.Below++
				status.Below++
				for _, v := range use.Volumes {
					byVolume[v]++
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, c := range plan.collections {
		status.Collections = append(status.Collections, *counts[c])
	}
	if c := counts[&plan.def]; c != nil {
		status.Collections = append(status.Collections, *c)
	}
	for _, v := range plan.volumes {
		status.Volumes = append(status.Volumes, VolumeCopies{Volume: v.Label, Below: byVolume[v.ID]})
	}
	return status, nil
}
