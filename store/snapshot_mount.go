package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/snapshot"
)

// listingMaxAge bounds how long a mount's cached listing of snapshot
// names is used without reading the volume again. Snapshots this Store
// takes make it out of date at once (snapshotGen); the bound is for
// records named on the volume by anything else.
const listingMaxAge = 30 * time.Second

// MountSnapshots is what a mount's snapshots/ directory reads
// (fusefs.Snapshots): the snapshots named on one volume, their records
// and their tree blobs. The names of all collections' snapshots are
// listed with one ListObjects and kept until the Store takes another
// snapshot (or listingMaxAge passes), so that listing snapshots/<c>/
// reads no object per snapshot; a record is read only when its snapshot
// is looked up. Safe for concurrent use.
type MountSnapshots struct {
	store  *Store
	volume int

	mu      sync.Mutex // guards listing; never held during I/O
	listing *snapshotListing
}

// snapshotListing is one reading of the volume's record names.
type snapshotListing struct {
	gen    uint64 // the Store's snapshotGen before the names were read
	readAt time.Time
	names  map[string][]string // collection -> record names, oldest first
}

// NewMountSnapshots returns the snapshots of the store's collections
// named on volume volumeID.
func NewMountSnapshots(s *Store, volumeID int) *MountSnapshots {
	return &MountSnapshots{store: s, volume: volumeID}
}

// Collections returns the names of the collections with at least one
// snapshot on the volume, sorted; none is an empty list and no error.
func (m *MountSnapshots) Collections(ctx context.Context) ([]string, error) {
	l, err := m.current(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(l.names))
	for name := range l.names {
		out = append(out, name)
	}
	slices.Sort(out)
	return out, nil
}

// Names returns the record names of collection's snapshots, oldest first
// (snapshot.RecordName form); a collection without snapshots, or no such
// collection, has none (an empty list and no error). The caller must not
// change the list.
func (m *MountSnapshots) Names(ctx context.Context, collection string) ([]string, error) {
	l, err := m.current(ctx)
	if err != nil {
		return nil, err
	}
	return l.names[collection], nil
}

// Root returns the collection's folder as snapshot name holds it (its Ref
// is the root tree), read from the record that the volume names; no such
// snapshot is an fs.ErrNotExist error, a damaged record an error wrapping
// diskaccess.ErrCorrupt or snapshot.ErrCorrupt.
func (m *MountSnapshots) Root(ctx context.Context, collection, name string) (snapshot.Entry, error) {
	driver, prefix, err := m.store.recordNames(ctx, collection, m.volume)
	if err != nil {
		return snapshot.Entry{}, err
	}
	info, err := readRecordInfo(ctx, driver, prefix, collection, name)
	if err != nil {
		return snapshot.Entry{}, err
	}
	rec, err := m.store.Record(ctx, info)
	if err != nil {
		return snapshot.Entry{}, err
	}
	return rec.Root, nil
}

// LoadTree is Store.LoadTree: a tree blob through the verified read path.
func (m *MountSnapshots) LoadTree(ctx context.Context, ref blobstore.Ref) ([]byte, error) {
	return m.store.LoadTree(ctx, ref)
}

// current returns the cached listing, or reads the volume's names again
// if the Store has taken a snapshot since or the listing is old.
func (m *MountSnapshots) current(ctx context.Context) (*snapshotListing, error) {
	gen := m.store.snapshotGen.Load()
	m.mu.Lock()
	l := m.listing
	m.mu.Unlock()
	if l != nil && l.gen == gen && time.Since(l.readAt) < listingMaxAge {
		return l, nil
	}
	l, err := m.read(ctx, gen)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.listing == nil || m.listing.gen <= l.gen {
		m.listing = l
	}
	m.mu.Unlock()
	return l, nil
}

// read lists every record name on the volume at once, and files each
// under the collection whose key id it is named by.
func (m *MountSnapshots) read(ctx context.Context, gen uint64) (*snapshotListing, error) {
	collections, err := m.store.Collections(ctx)
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]string, len(collections))
	for _, c := range collections {
		byKey[c.KeyID] = c.Name
	}
	driver, err := m.store.ctl.Driver(m.volume)
	if err != nil {
		return nil, err
	}
	l := &snapshotListing{gen: gen, readAt: time.Now(), names: map[string][]string{}}
	err = driver.ListObjects(ctx, recordPrefix, func(o blobstore.ObjectInfo) error {
		keyID, lower, ok := strings.Cut(strings.TrimPrefix(o.Name, recordPrefix), "/")
		name := strings.ToUpper(lower)
		if collection, known := byKey[keyID]; ok && known && validRecordName(name) {
			l.names[collection] = append(l.names[collection], name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the snapshots on volume %s: %w", m.store.VolumeName(ctx, m.volume), err)
	}
	for _, names := range l.names {
		slices.Sort(names) // in object order already (see listRecordNames)
	}
	return l, nil
}

func validRecordName(name string) bool {
	_, err := snapshot.ParseRecordName(name)
	return err == nil
}
