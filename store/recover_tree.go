package store

import (
	"context"
	"fmt"
	"path"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/metastore/snapshot"
)

// restoreTrees brings back each collection's tree from its newest intact
// snapshot on the volume, and returns how many indexed blobs the restored
// trees use (tree, record and content blobs).
func (s *Store) restoreTrees(ctx context.Context, volumeID int, keys *badger.KeyExport, idx *recoveredIndex, r Reporter, report *RecoverReport) (int, error) {
	used := map[blobstore.Ref]bool{}
	for _, c := range keys.Collections {
		rc := RecoveredCollection{Name: c.Name}
		all, err := s.Snapshots(ctx, c.Name, volumeID)
		if err != nil {
			return 0, err
		}
		for i := len(all) - 1; i >= 0 && rc.Snapshot == ""; i-- {
			tree, err := s.loadSnapshot(ctx, &all[i])
			if err != nil {
				rc.Skipped = append(rc.Skipped, fmt.Sprintf("%s: %v", all[i].Name, err))
				r.Warn(fmt.Sprintf("snapshot %s of %s is damaged and was not used: %v", all[i].Name, c.Name, err))
				continue
			}
			if err := s.restoreTree(ctx, tree, idx.chains[c.Name], &rc); err != nil {
				return 0, err
			}
			for ref := range tree.blobs {
				used[ref] = true
			}
		}
		if rc.Snapshot == "" && len(all) > 0 {
			rc.Error = "no intact snapshot"
		}
		report.Collections = append(report.Collections, rc)
	}
	return len(used), nil
}

// loadedTree is a snapshot read whole and checked, before anything of it
// is restored.
type loadedTree struct {
	info    *SnapshotInfo
	record  *snapshot.Record
	entries []pathEntry
	blobs   map[blobstore.Ref]bool // every blob it uses
	missing int                    // files whose content the store does not hold
}

type pathEntry struct {
	path  string
	entry snapshot.Entry
}

// loadSnapshot reads a snapshot's record and every tree blob of it, all
// verified: a damaged snapshot is an error, never a partial tree.
func (s *Store) loadSnapshot(ctx context.Context, info *SnapshotInfo) (*loadedTree, error) {
	rec, err := s.Record(ctx, info)
	if err != nil {
		return nil, err
	}
	tree := &loadedTree{info: info, record: rec, blobs: map[blobstore.Ref]bool{info.Record: true}}
	load := func(ctx context.Context, ref blobstore.Ref) ([]byte, error) {
		tree.blobs[ref] = true
		return s.LoadTree(ctx, ref)
	}
	err = snapshot.Walk(ctx, load, rec.Root.Ref, func(p string, e snapshot.Entry) error {
		tree.entries = append(tree.entries, pathEntry{p, e})
		if e.Kind == snapshot.KindFile && !e.Ref.IsZero() {
			tree.blobs[e.Ref] = true
			if ok, err := s.meta.QueryBlobExists(ctx, e.Ref); err != nil || !ok {
				tree.missing++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return tree, nil
}

// restoreTree writes a loaded snapshot's tree into the metadata, with its
// inode numbers, as the collection's files/ folder.
func (s *Store) restoreTree(ctx context.Context, tree *loadedTree, chain indexChain, rc *RecoveredCollection) error {
	restorer := s.meta.NewRestorer()
	defer restorer.Cancel()
	root := tree.record.Root
	if err := restorer.Folder(rc.Name, inodeOf(root), xattrsOf(root)); err != nil {
		return err
	}
	dirs := map[string]uint64{"": root.Ino}
	for _, pe := range tree.entries {
		parent, ok := dirs[path.Dir("/" + pe.path)[1:]]
		if !ok {
			return fmt.Errorf("snapshot %s: %q comes before its directory: %w", tree.info.Name, pe.path, snapshot.ErrCorrupt)
		}
		if err := restorer.Add(parent, pe.entry.Name, inodeOf(pe.entry), xattrsOf(pe.entry)); err != nil {
			return fmt.Errorf("snapshot %s: %s: %w", tree.info.Name, pe.path, err)
		}
		if pe.entry.Kind == snapshot.KindDir {
			dirs[pe.path] = pe.entry.Ino
		}
	}
	if err := restorer.Finish(ctx); err != nil {
		return err
	}
	last := lastSnapshot{Name: tree.info.Name, Time: tree.record.Time, Record: tree.info.Record, Root: root,
		Index: chain.head, IndexLen: chain.length}
	if err := s.meta.SetState(ctx, lastSnapshotState(rc.Name), &last); err != nil {
		return err
	}
	rc.Snapshot, rc.Files = tree.info.Name, len(tree.entries)
	if tree.missing > 0 {
		rc.Error = fmt.Sprintf("%d files' content is not on the volume", tree.missing)
	}
	return nil
}

// inodeOf is the inode a snapshot entry restores.
func inodeOf(e snapshot.Entry) *badger.Inode {
	n := &badger.Inode{Ino: e.Ino, Kind: badger.Kind(e.Kind), Mode: e.Mode, UID: e.UID, GID: e.GID,
		Size: e.Size, Mtime: e.Mtime, Ctime: e.Ctime, Target: e.Target, Rdev: e.Rdev, Nlink: e.Nlink}
	if e.Kind == snapshot.KindFile {
		n.Ref, n.StoredSize, n.Committed = e.Ref, e.StoredSize, true
	}
	return n
}

// xattrsOf are the extended attributes a snapshot entry restores.
func xattrsOf(e snapshot.Entry) []badger.Xattr {
	var xattrs []badger.Xattr
	for _, x := range e.Xattrs {
		xattrs = append(xattrs, badger.Xattr(x))
	}
	return xattrs
}
