package badger

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/stofuse/stofuse/blobstore"
)

// filePlan is what Settle is to do with a journaled file, and where the
// file is.
type filePlan struct {
	SettledFile
	entry  PendingContent
	parent uint64 // the directory that names it (reverted, removed, unchecked)
	name   string // its name there; "" if none was found
	// replaced are the files it replaced by a rename (replaced.go); if
	// it is removed, restore[i] is replaced[i] as it comes back (nil if
	// its content is lost too), named replacedPaths[i].
	replaced      []ReplacedFile
	restore       []*Inode
	replacedPaths []string
}

// settleFiles settles the journaled files (after their blobs): each is
// decided in one view, those to report are named with one scan of each
// directory concerned (a crash in the middle of an untar leaves thousands
// in one directory), and each is changed in a transaction of its own
// that removes its entry.
func (s *Store) settleFiles(ctx context.Context, j *Journal, unchecked map[blobstore.Ref]bool) ([]SettledFile, error) {
	byMoving := map[uint64][]ReplacedFile{}
	for _, r := range j.Replaced {
		byMoving[r.Moving] = append(byMoving[r.Moving], r)
	}
	contents := map[uint64]PendingContent{}
	for _, c := range j.Contents {
		contents[c.Ino] = c
	}
	plans := make([]*filePlan, 0, len(j.Contents))
	err := s.view(func(txn *badgerdb.Txn) error {
		for _, c := range j.Contents {
			if err := ctx.Err(); err != nil {
				return err
			}
			plan, err := planFile(txn, c, unchecked)
			if err != nil {
				return fmt.Errorf("settling file %d: %w", c.Ino, err)
			}
			plan.replaced = byMoving[c.Ino]
			delete(byMoving, c.Ino)
			// The newest first (inode numbers grow): a name takes the
			// first that comes back.
			slices.SortFunc(plan.replaced, func(a, b ReplacedFile) int {
				return cmp.Or(cmp.Compare(b.Generation, a.Generation), cmp.Compare(b.Replaced.Ino, a.Replaced.Ino))
			})
			for _, r := range plan.replaced {
				var n *Inode
				if plan.Outcome == FileRemoved {
					if n, err = restorable(txn, r, contents, unchecked); err != nil {
						return err
					}
				}
				plan.restore = append(plan.restore, n)
			}
			plans = append(plans, plan)
		}
		return s.nameFiles(ctx, txn, plans)
	})
	if err != nil {
		return nil, err
	}
	if err := s.dropOrphanReplaced(byMoving); err != nil {
		return nil, err
	}
	settled := make([]SettledFile, 0, len(plans))
	for _, plan := range plans {
		if err := s.applyFile(plan); err != nil {
			return nil, fmt.Errorf("settling %s: %w", plan.Path, err)
		}
		settled = append(settled, plan.SettledFile)
	}
	return settled, nil
}

// planFile decides what becomes of a journaled file.
func planFile(txn *badgerdb.Txn, c PendingContent, unchecked map[blobstore.Ref]bool) (*filePlan, error) {
	plan := &filePlan{SettledFile: SettledFile{Ino: c.Ino}, entry: c}
	n, err := getInode(txn, c.Ino)
	switch {
	case isNotExist(err) || err == nil && (n.Kind != KindFile || !n.Committed):
		plan.Outcome = FileGone
		return plan, nil
	case err != nil:
		return nil, err
	case unchecked[n.Ref]:
		plan.Outcome = FileUnchecked
		return plan, nil
	}
	found, err := exists(txn, blobKey(n.Ref))
	if err != nil || found {
		plan.Outcome = FileKept
		return plan, err
	}
	plan.Lost = n.Ref
	to, ok, err := survivingContent(txn, c, unchecked)
	if err != nil {
		return nil, err
	}
	plan.Outcome, plan.Content = FileRemoved, to
	if ok {
		plan.Outcome = FileReverted
	}
	return plan, nil
}

// survivingContent returns the newest content of a journal entry whose
// blob is recorded (and checked): its newer content, else its durable one.
func survivingContent(txn *badgerdb.Txn, c PendingContent, unchecked map[blobstore.Ref]bool) (Content, bool, error) {
	for _, candidate := range []*Content{c.Newer, &c.Durable} {
		if candidate == nil || !candidate.Had || unchecked[candidate.Ref] {
			continue
		}
		found, err := exists(txn, blobKey(candidate.Ref))
		if err != nil {
			return Content{}, false, err
		}
		if found {
			return *candidate, true, nil
		}
	}
	return Content{}, false, nil
}

// applyFile does what plan says, in one transaction with the removal (or
// the leaving) of the file's entry.
func (s *Store) applyFile(plan *filePlan) error {
	key := journalContentKey(plan.Ino)
	return s.update(func(txn *badgerdb.Txn) error {
		switch plan.Outcome {
		case FileUnchecked:
			for _, r := range plan.replaced {
				if err := leaveEntry(txn, journalReplacedKey(r.Moving, r.Replaced.Ino)); err != nil {
					return err
				}
			}
			return leaveEntry(txn, key)
		case FileReverted, FileRemoved:
			n, err := getInode(txn, plan.Ino)
			if err != nil {
				return err
			}
			if n.Ref != plan.Lost {
				return fmt.Errorf("inode %d changed while it was settled", plan.Ino)
			}
			if plan.Outcome == FileReverted {
				err = s.setContent(txn, n, plan.Content)
			} else if err = s.removeFile(txn, n, plan.parent, plan.name); err == nil {
				plan.Restored, err = s.restoreReplaced(txn, plan.replaced, plan.restore, plan.replacedPaths)
			}
			if err != nil {
				return err
			}
		}
		for _, r := range plan.replaced { // what restoreReplaced did not take
			if err := dropReplacedFile(txn, r); err != nil {
				return err
			}
		}
		return txn.Delete(key)
	})
}

// dropOrphanReplaced removes the replaced-file entries of moving files
// that have no content entry (their content became durable).
func (s *Store) dropOrphanReplaced(byMoving map[uint64][]ReplacedFile) error {
	if len(byMoving) == 0 {
		return nil
	}
	return s.update(func(txn *badgerdb.Txn) error {
		for _, entries := range byMoving {
			for _, r := range entries {
				if err := dropReplacedFile(txn, r); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// setContent makes, in txn, committed file n's content c, as
// CommitContent does, keeping the index of which files use a blob and
// the stamp of the directory that lists it.
func (s *Store) setContent(txn *badgerdb.Txn, n *Inode, c Content) error {
	if err := txn.Delete(refUseKey(n.Ref, n.Ino)); err != nil {
		return err
	}
	if err := txn.Set(refUseKey(c.Ref, n.Ino), nil); err != nil {
		return err
	}
	n.Ref, n.Size, n.StoredSize, n.Mtime, n.Ctime = c.Ref, c.Size, c.StoredSize, c.Mtime, time.Now()
	if err := putInode(txn, n); err != nil {
		return err
	}
	return s.touchParentsOf(txn, n)
}

// removeFile removes, in txn, file n, named name in directory parent, as
// Remove does; a file named nowhere loses its own records only.
func (s *Store) removeFile(txn *badgerdb.Txn, n *Inode, parent uint64, name string) error {
	if name != "" {
		return s.deleteInode(txn, parent, name, n.Ino)
	}
	if n.Linked() {
		if err := s.removeOtherNames(txn, n.Ino, 0, ""); err != nil {
			return err
		}
	}
	if err := deleteXattrs(txn, n); err != nil {
		return err
	}
	for _, key := range [][]byte{inoKey(prefixInode, n.Ino), inoKey(prefixUncommitted, n.Ino),
		inoKey(prefixParent, n.Ino), refUseKey(n.Ref, n.Ino)} {
		if err := txn.Delete(key); err != nil {
			return err
		}
	}
	return nil
}
