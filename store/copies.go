package store

import (
	"context"
	"slices"

	"github.com/stofuse/stofuse/metastore/badger"
)

// The copies policy. Each collection keeps every blob it uses on a number
// of volumes (its own policy, or the store's: one copy unless set), on
// any volumes or only on those it names. A blob belongs to the collection
// whose data key seals it, and to every collection one of whose files
// uses it: it follows the largest number of copies among them (and that
// policy's volumes). A copy counts when the metadata records it (every
// recorded copy was verified when it was made) on a volume the policy
// allows. ReplicateByPolicy makes the copies that are missing
// (copies_pass.go); a mount's daemon runs it in the background
// (Replicator); CopiesStatus counts what is below policy
// (copies_status.go).

// copiesPlan is the policies of a store's collections, as one pass of
// ReplicateByPolicy or CopiesStatus reads them once at its start.
type copiesPlan struct {
	def         collectionPolicy
	collections []*collectionPolicy
	byKey       map[string]*collectionPolicy // by data key id
	byFolder    map[uint64]*collectionPolicy // by folder inode
	dirFolder   map[uint64]uint64            // the folder of each directory met (FileFolders' cache)
	most        int                          // the largest number of copies of any policy
	volumes     []*badger.Volume             // every registered volume, by id
}

// collectionPolicy is the policy a collection follows.
type collectionPolicy struct {
	name string // "": blobs of no collection, which follow the store's policy
	badger.CopiesPolicy
	own bool // the collection's own policy (else the store's)
}

func (s *Store) copiesPlan(ctx context.Context) (*copiesPlan, error) {
	def, err := s.meta.DefaultCopies(ctx)
	if err != nil {
		return nil, err
	}
	collections, err := s.meta.Collections(ctx)
	if err != nil {
		return nil, err
	}
	volumes, err := s.meta.Volumes(ctx)
	if err != nil {
		return nil, err
	}
	p := &copiesPlan{def: collectionPolicy{CopiesPolicy: def}, byKey: map[string]*collectionPolicy{},
		byFolder: map[uint64]*collectionPolicy{}, dirFolder: map[uint64]uint64{}, most: def.Copies, volumes: volumes}
	for _, c := range collections {
		cp := &collectionPolicy{name: c.Name, CopiesPolicy: def}
		if c.Copies != nil {
			cp.CopiesPolicy, cp.own = *c.Copies, true
		}
		p.collections = append(p.collections, cp)
		p.byKey[c.KeyID] = cp
		if c.FolderIno != 0 {
			p.byFolder[c.FolderIno] = cp
		}
		p.most = max(p.most, cp.Copies)
	}
	return p, nil
}

// trivial reports whether every policy is one copy on any volume, which
// every recorded blob has (a record goes with its last copy): nothing can
// be below it, and nothing need be walked.
func (p *copiesPlan) trivial() bool {
	if p.most > 1 || len(p.def.Volumes) > 0 {
		return false
	}
	for _, c := range p.collections {
		if len(c.Volumes) > 0 {
			return false
		}
	}
	return true
}

// allowed counts the store's volumes that policy allows.
func (p *copiesPlan) allowed(policy *collectionPolicy) int {
	if len(policy.Volumes) > 0 {
		return len(policy.Volumes)
	}
	return len(p.volumes)
}

// policyOf is the policy blob use follows: its key's collection's, or
// that of a collection one of whose files uses it, whichever asks for
// more copies.
func (s *Store) policyOf(ctx context.Context, p *copiesPlan, use *badger.BlobUse) (*collectionPolicy, error) {
	policy := p.byKey[use.KeyID]
	if policy == nil {
		policy = &p.def
	}
	if !use.Files || policy.Copies >= p.most {
		return policy, nil
	}
	isFolder := func(ino uint64) bool { return p.byFolder[ino] != nil }
	err := s.meta.FileFolders(ctx, use.Ref, isFolder, p.dirFolder, func(folder uint64) error {
		if other := p.byFolder[folder]; other.Copies > policy.Copies {
			policy = other
		}
		return nil
	})
	return policy, err
}

// copiesHeld counts the copies in volumes that policy counts.
func copiesHeld(policy *collectionPolicy, volumes []int) int {
	if len(policy.Volumes) == 0 {
		return len(volumes)
	}
	n := 0
	for _, v := range volumes {
		if slices.Contains(policy.Volumes, v) {
			n++
		}
	}
	return n
}
