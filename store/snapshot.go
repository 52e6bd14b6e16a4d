package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/metastore/snapshot"
)

// SnapshotResult says what Snapshot did.
type SnapshotResult struct {
	Collection string        `json:"collection"`
	Name       string        `json:"name"` // snapshot.RecordName of Time; "" when Unchanged
	Time       time.Time     `json:"time"`
	Root       blobstore.Ref `json:"root"`   // the collection folder's tree
	Record     blobstore.Ref `json:"record"` // the record blob
	// Unchanged: nothing changed since the last snapshot, Name, which was
	// not taken again.
	Unchanged bool `json:"unchanged,omitempty"`
	// Empty: the folder is empty and was never snapshotted: there is
	// nothing to keep, and nothing was stored.
	Empty bool `json:"empty,omitempty"`
	// Dirs counts the directories encoded again; the others were reused.
	Dirs     int           `json:"dirs_encoded"`
	NewBlobs int           `json:"new_blobs"` // tree and record blobs stored
	NewBytes int64         `json:"new_bytes"` // their plaintext bytes
	Elapsed  time.Duration `json:"elapsed_ns"`
}

// lastSnapshot is a collection's last snapshot, kept in the metadata.
type lastSnapshot struct {
	Name   string         `json:"name"`
	Time   time.Time      `json:"time"`
	Record blobstore.Ref  `json:"record"`
	Root   snapshot.Entry `json:"root"`
	// Index is the newest segment of the blob index, and IndexLen the
	// number of segments in its chain.
	Index    blobstore.Ref `json:"index,omitzero"`
	IndexLen int           `json:"index_len,omitempty"`
}

func lastSnapshotState(collection string) string { return "snapshot/" + collection }

// ErrNoFolder: the collection has no files/ folder to snapshot.
var ErrNoFolder = errors.New("has no folder under files/")

// Snapshot stores a snapshot of collection's files/ tree on volume: one
// tree blob (or a few, for a large directory) per directory, sealed with
// the collection's key like any blob, and a record naming the root. Only
// the directories that changed since the last snapshot are encoded again.
// It is a durability barrier: the tree blobs and the record are durable
// before the record is named on the volume. The tree is read as it was
// when the snapshot began, while writers go on. A snapshot of a tree that
// changed nothing since the last one is not taken (Unchanged), nor is a
// first one of an empty folder (Empty).
func (s *Store) Snapshot(ctx context.Context, collection string, volumeID int) (*SnapshotResult, error) {
	s.snapshotMu.Lock()
	defer s.snapshotMu.Unlock()
	start := time.Now()
	c, err := s.Collection(ctx, collection)
	if err != nil {
		return nil, err
	}
	if c.FolderIno == 0 {
		return nil, fmt.Errorf("collection %q %w", collection, ErrNoFolder)
	}
	if err := s.ensureKeys(ctx, volumeID); err != nil {
		return nil, err
	}
	var last lastSnapshot
	if err := s.meta.State(ctx, lastSnapshotState(collection), &last); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	sn := &snapshotter{store: s, collection: collection, volume: volumeID, ctx: blobstore.WithDeferredSync(ctx)}
	var root snapshot.Entry
	empty := false
	err = s.meta.ViewTree(ctx, func(v *badger.TreeView) error {
		sn.view = v
		if last.Name == "" {
			if empty, err = isEmptyDir(ctx, v, c.FolderIno); err != nil || empty {
				return err
			}
		}
		ref, _, err := sn.build(c.FolderIno)
		if err != nil {
			return err
		}
		folder, err := v.Inode(c.FolderIno)
		if err != nil {
			return err
		}
		xattrs, err := v.Xattrs(folder)
		if err != nil {
			return err
		}
		root = entryOf(badger.Entry{Name: collection, Ino: folder.Ino, Kind: folder.Kind}, folder, xattrs, ref)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot of %s: %w", collection, err)
	}
	if empty {
		return &SnapshotResult{Collection: collection, Empty: true, Elapsed: time.Since(start)}, nil
	}
	result := &SnapshotResult{Collection: collection, Root: root.Ref, Dirs: sn.dirs}
	if last.Name != "" && last.Root.Equal(&root) {
		result.Unchanged, result.Name, result.Time, result.Record = true, last.Name, last.Time, last.Record
	} else if err := s.recordSnapshot(ctx, sn, c.KeyID, &last, root, result); err != nil {
		return nil, err
	}
	if err := s.meta.SetCachedTrees(ctx, sn.made); err != nil {
		return nil, err
	}
	result.NewBlobs, result.NewBytes, result.Elapsed = sn.newBlobs, sn.newBytes, time.Since(start)
	return result, nil
}

// isEmptyDir reports whether dir has no entries, as the view sees it.
func isEmptyDir(ctx context.Context, v *badger.TreeView, dir uint64) (bool, error) {
	errFound := errors.New("found")
	err := v.ReadDir(ctx, dir, func(badger.Entry) error { return errFound })
	if err == errFound {
		return false, nil
	}
	return err == nil, err
}

// recordSnapshot stores the record of a snapshot whose tree is stored:
// the record blob, the barrier, then its name on the volume.
func (s *Store) recordSnapshot(ctx context.Context, sn *snapshotter, keyID string, last *lastSnapshot, root snapshot.Entry, result *SnapshotResult) error {
	index, err := s.writeIndex(sn, keyID, last)
	if err != nil {
		return fmt.Errorf("snapshot of %s: the blob index: %w", sn.collection, err)
	}
	rec := &snapshot.Record{Time: snapshot.NextTime(time.Now().UTC(), last.Time), Root: root,
		Parent: last.Name, ParentRef: last.Record, Writer: "stofuse", Index: index.head}
	body, err := snapshot.EncodeRecord(rec)
	if err != nil {
		return err
	}
	name, err := snapshot.RecordName(rec.Time)
	if err != nil {
		return err
	}
	ref := blobstore.RefOf(body)
	if err := sn.emit(sn.ctx, ref, body); err != nil {
		return err
	}
	if err := s.ctl.Sync(ctx, sn.volume); err != nil {
		return fmt.Errorf("snapshot of %s: making its blobs durable: %w", sn.collection, err)
	}
	driver, err := s.ctl.Driver(sn.volume)
	if err != nil {
		return err
	}
	if err := driver.PutObject(ctx, recordObject(keyID, name), bytes.NewReader([]byte(ref.String()+"\n"))); err != nil {
		return fmt.Errorf("snapshot of %s: naming its record: %w", sn.collection, err)
	}
	s.snapshotGen.Add(1) // after the name is there: a listing read before it is out of date
	*last = lastSnapshot{Name: name, Time: rec.Time, Record: ref, Root: root, Index: index.head, IndexLen: index.length}
	if err := s.meta.SetState(ctx, lastSnapshotState(sn.collection), last); err != nil {
		return err
	}
	if err := s.meta.ClearIndexChanges(ctx, keyID, index.marks); err != nil {
		return err
	}
	for _, note := range index.covered {
		// Best effort: a note left behind only keeps an explicit store
		// that the index keeps anyway.
		driver.RemoveObject(ctx, note)
	}
	result.Name, result.Time, result.Record = name, rec.Time, ref
	return nil
}

// snapshotter is one running Snapshot.
type snapshotter struct {
	store      *Store
	view       *badger.TreeView
	collection string
	volume     int
	ctx        context.Context // with deferred syncs: Snapshot syncs once
	made       []badger.CachedTree
	dirs       int
	newBlobs   int
	newBytes   int64
}

// build returns the tree ref of directory dir, and whether it differs
// from the one the last snapshot cached: a directory is encoded again
// only if it changed or one of its subdirectories' trees did.
func (sn *snapshotter) build(dir uint64) (blobstore.Ref, bool, error) {
	stamp, cached, valid, err := sn.view.DirTree(dir)
	if err != nil {
		return blobstore.Ref{}, false, err
	}
	subtrees := map[uint64]blobstore.Ref{}
	changed := !valid
	err = sn.view.Subdirs(sn.ctx, dir, func(name string, ino uint64) error {
		ref, subChanged, err := sn.build(ino)
		subtrees[ino] = ref
		changed = changed || subChanged
		return err
	})
	if err != nil || !changed {
		return cached, false, err
	}
	ref, err := sn.encode(dir, subtrees)
	if err != nil {
		return blobstore.Ref{}, false, err
	}
	sn.made = append(sn.made, badger.CachedTree{Dir: dir, Stamp: stamp, Ref: ref})
	return ref, ref != cached, nil
}

// encode writes the tree of one directory, whose subdirectories' trees
// are built.
func (sn *snapshotter) encode(dir uint64, subtrees map[uint64]blobstore.Ref) (blobstore.Ref, error) {
	sn.dirs++
	w := snapshot.NewWriter(sn.emit)
	err := sn.view.ReadDir(sn.ctx, dir, func(e badger.Entry) error {
		n, err := sn.view.Inode(e.Ino)
		if err != nil {
			return err
		}
		if n.Kind == badger.KindFile && !n.Committed {
			return nil // being written for the first time: as after a crash, not there yet
		}
		xattrs, err := sn.view.Xattrs(n)
		if err != nil {
			return err
		}
		return w.Add(sn.ctx, entryOf(e, n, xattrs, subtrees[e.Ino]))
	})
	if err != nil {
		return blobstore.Ref{}, err
	}
	return w.Finish(sn.ctx)
}

// entryOf is the snapshot entry of a name in the tree, with its inode's
// extended attributes; tree is a directory's tree ref.
func entryOf(e badger.Entry, n *badger.Inode, xattrs []badger.Xattr, tree blobstore.Ref) snapshot.Entry {
	out := snapshot.Entry{Name: e.Name, Kind: snapshot.Kind(n.Kind), Ino: n.Ino, Mode: n.Mode, UID: n.UID, GID: n.GID,
		Size: n.Size, Mtime: n.Mtime, Ctime: n.Ctime, Target: n.Target, Rdev: n.Rdev}
	switch n.Kind {
	case badger.KindFile:
		out.Ref, out.StoredSize = n.Ref, n.StoredSize
	case badger.KindDir:
		out.Ref, out.Size = tree, 0
	}
	if n.Linked() {
		out.Nlink = n.Links()
	}
	for _, x := range xattrs {
		out.Xattrs = append(out.Xattrs, snapshot.Xattr(x))
	}
	return out
}

// emit stores a tree or record blob, unless the volume has it.
func (sn *snapshotter) emit(ctx context.Context, ref blobstore.Ref, plaintext []byte) error {
	meta, err := sn.store.meta.QueryBlobMetadata(ctx, ref, nil)
	if err == nil && containsInt(meta.Volumes, sn.volume) {
		return nil
	}
	if err := sn.store.ctl.WriteBlob(ctx, sn.volume, sn.collection, ref, bytes.NewReader(plaintext), true); err != nil {
		return err
	}
	sn.newBlobs++
	sn.newBytes += int64(len(plaintext))
	return nil
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
