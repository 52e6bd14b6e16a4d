package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/snapshot"
)

// A snapshot's record is named on the volume by the named object
// snapshots/<collection key id>/<record name, lower case> holding the
// record blob's ref in hex (docs/format.md, "Snapshot records").
const recordPrefix = "snapshots/"

func recordObject(keyID, name string) string {
	return recordPrefix + keyID + "/" + strings.ToLower(name)
}

// maxTreeBlob bounds a tree or record blob read back (snapshot.maxBlob is
// 1 MiB; a record is far smaller).
const maxTreeBlob = 1 << 20

// SnapshotInfo names one snapshot of a collection.
type SnapshotInfo struct {
	Collection string        `json:"collection"`
	Name       string        `json:"name"`
	Time       time.Time     `json:"time"`
	Record     blobstore.Ref `json:"record"`
}

// Snapshots lists the snapshots of collection named on volume, oldest
// first, with their record refs (one object read per snapshot: for a
// listing of names alone, SnapshotNames).
func (s *Store) Snapshots(ctx context.Context, collection string, volumeID int) ([]SnapshotInfo, error) {
	driver, prefix, err := s.recordNames(ctx, collection, volumeID)
	if err != nil {
		return nil, err
	}
	names, err := listRecordNames(ctx, driver, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]SnapshotInfo, 0, len(names))
	for _, name := range names {
		info, err := readRecordInfo(ctx, driver, prefix, collection, name)
		if err != nil {
			return nil, err
		}
		out = append(out, *info)
	}
	return out, nil
}

// SnapshotNames lists the names of collection's snapshots on volume,
// oldest first, from the names on the volume alone (no record is read).
// A collection without snapshots has none, and no error.
func (s *Store) SnapshotNames(ctx context.Context, collection string, volumeID int) ([]string, error) {
	driver, prefix, err := s.recordNames(ctx, collection, volumeID)
	if err != nil {
		return nil, err
	}
	return listRecordNames(ctx, driver, prefix)
}

// recordNames returns the volume's driver and the prefix under which it
// names collection's records.
func (s *Store) recordNames(ctx context.Context, collection string, volumeID int) (blobstore.Driver, string, error) {
	c, err := s.Collection(ctx, collection)
	if err != nil {
		return nil, "", err
	}
	driver, err := s.ctl.Driver(volumeID)
	if err != nil {
		return nil, "", err
	}
	return driver, recordPrefix + c.KeyID + "/", nil
}

// listRecordNames returns the record names under prefix, oldest first;
// objects whose names are not record names are not ours and are skipped.
func listRecordNames(ctx context.Context, driver blobstore.Driver, prefix string) ([]string, error) {
	var names []string
	err := driver.ListObjects(ctx, prefix, func(o blobstore.ObjectInfo) error {
		name := strings.ToUpper(strings.TrimPrefix(o.Name, prefix))
		if _, err := snapshot.ParseRecordName(name); err == nil {
			names = append(names, name)
		}
		return nil
	})
	// Names are fixed width with their letters in fixed places, so the
	// object order is time order already; sorting keeps that a local fact.
	sort.Strings(names)
	return names, err
}

// readRecordInfo reads the ref that the volume names record name by; a
// name the volume does not hold is an fs.ErrNotExist error.
func readRecordInfo(ctx context.Context, driver blobstore.Driver, prefix, collection, name string) (*SnapshotInfo, error) {
	t, err := snapshot.ParseRecordName(name)
	if err != nil {
		return nil, fmt.Errorf("collection %s has no snapshot %s: %w", collection, name, fs.ErrNotExist)
	}
	ref, err := readRecordRef(ctx, driver, prefix+strings.ToLower(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("collection %s has no snapshot %s: %w", collection, name, err)
	}
	if err != nil {
		return nil, err
	}
	return &SnapshotInfo{Collection: collection, Name: name, Time: t, Record: ref}, nil
}

func readRecordRef(ctx context.Context, driver blobstore.Driver, object string) (blobstore.Ref, error) {
	r, err := driver.GetObject(ctx, object)
	if err != nil {
		return blobstore.Ref{}, err
	}
	defer r.Close()
	body, err := io.ReadAll(io.LimitReader(r, 200))
	if err != nil {
		return blobstore.Ref{}, err
	}
	ref, err := blobstore.ParseRef(strings.TrimSpace(string(body)))
	if err != nil {
		return blobstore.Ref{}, fmt.Errorf("snapshot name %s: %w", object, err)
	}
	return ref, nil
}

// FindSnapshot returns the snapshot of collection named name on volume,
// or "latest" for the newest; an fs.ErrNotExist error if there is none.
// It reads one record name's ref, whatever the number of snapshots.
func (s *Store) FindSnapshot(ctx context.Context, collection, name string, volumeID int) (*SnapshotInfo, error) {
	driver, prefix, err := s.recordNames(ctx, collection, volumeID)
	if err != nil {
		return nil, err
	}
	if name == "latest" {
		names, err := listRecordNames(ctx, driver, prefix)
		if err != nil {
			return nil, err
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("collection %s has no snapshots: %w", collection, fs.ErrNotExist)
		}
		name = names[len(names)-1]
	}
	return readRecordInfo(ctx, driver, prefix, collection, name)
}

// LoadTree reads a tree or record blob through the verified read path:
// a snapshot.Loader.
func (s *Store) LoadTree(ctx context.Context, ref blobstore.Ref) ([]byte, error) {
	meta, err := s.meta.QueryBlobMetadata(ctx, ref, nil)
	if err != nil {
		return nil, fmt.Errorf("tree blob %s: %w", ref, err)
	}
	if meta.RealSize > maxTreeBlob {
		return nil, fmt.Errorf("tree blob %s: %d bytes: %w", ref, meta.RealSize, snapshot.ErrCorrupt)
	}
	// One allocation, no copy: ReadFrom wants MinRead bytes of room to see EOF.
	buf := bytes.NewBuffer(make([]byte, 0, meta.RealSize+bytes.MinRead))
	if err := s.Cat(ctx, ref, buf, nil); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Record reads a snapshot's record.
func (s *Store) Record(ctx context.Context, info *SnapshotInfo) (*snapshot.Record, error) {
	body, err := s.LoadTree(ctx, info.Record)
	if err != nil {
		return nil, err
	}
	rec, err := snapshot.DecodeRecord(body)
	if err != nil {
		return nil, fmt.Errorf("record of snapshot %s: %w", info.Name, err)
	}
	if rec.Collection() != info.Collection || !rec.Time.Equal(info.Time) {
		return nil, fmt.Errorf("the record named snapshot %s of %s is of collection %q at %s: %w",
			info.Name, info.Collection, rec.Collection(), rec.Time.Format(time.RFC3339Nano), snapshot.ErrCorrupt)
	}
	return rec, nil
}

// DiffSnapshots reports the paths added, removed and changed from
// snapshot a to snapshot b, in path order.
func (s *Store) DiffSnapshots(ctx context.Context, a, b *SnapshotInfo, fn func(snapshot.Change) error) error {
	recA, err := s.Record(ctx, a)
	if err != nil {
		return err
	}
	recB, err := s.Record(ctx, b)
	if err != nil {
		return err
	}
	return snapshot.Diff(ctx, s.LoadTree, recA.Root.Ref, s.LoadTree, recB.Root.Ref, fn)
}
