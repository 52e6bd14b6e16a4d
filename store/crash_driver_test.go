package store_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/blobstore/localfs"
)

// crashDriver is a localfs volume that remembers the blobs stored or
// published under blobstore.WithDeferredSync that no Sync has covered
// yet, and on crash throws them away, as a power loss may: some deleted,
// the others cut to part of their length. Everything else passes through.
type crashDriver struct {
	*localfs.Store

	mu      sync.Mutex             // guards pending
	pending map[blobstore.Ref]bool // stored deferred, not yet covered by a Sync
}

var (
	_ blobstore.Driver             = (*crashDriver)(nil)
	_ blobstore.RandomAccessDriver = (*crashDriver)(nil)
	_ blobstore.Sweeper            = (*crashDriver)(nil)
	_ blobstore.Stager             = (*crashDriver)(nil)
)

func newCrashDriver(t *testing.T, dir string) *crashDriver {
	t.Helper()
	inner, err := localfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &crashDriver{Store: inner, pending: map[blobstore.Ref]bool{}}
}

// stored notes a store of ref under ctx that returned nil; replacing a
// blob is durable at once (blobstore.WithDeferredSync), so only a new one
// can be lost.
func (d *crashDriver) stored(ctx context.Context, ref blobstore.Ref, existed bool) {
	if !blobstore.SyncDeferred(ctx) || existed {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending[ref] = true
}

func (d *crashDriver) exists(ctx context.Context, ref blobstore.Ref) bool {
	_, err := d.Store.Stat(ctx, ref)
	return err == nil
}

func (d *crashDriver) RawStore(ctx context.Context, ref blobstore.Ref, content io.Reader) error {
	existed := d.exists(ctx, ref)
	if err := d.Store.RawStore(ctx, ref, content); err != nil {
		return err
	}
	d.stored(ctx, ref, existed)
	return nil
}

func (d *crashDriver) RawCreate(ctx context.Context, ref blobstore.Ref) (blobstore.StagedBlob, error) {
	staged, err := d.Store.RawCreate(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &crashStaged{StagedBlob: staged, driver: d, ref: ref}, nil
}

// Sync covers what was stored before it was called, once it succeeds.
func (d *crashDriver) Sync(ctx context.Context) error {
	d.mu.Lock()
	covered := make([]blobstore.Ref, 0, len(d.pending))
	for ref := range d.pending {
		covered = append(covered, ref)
	}
	d.mu.Unlock()
	if err := d.Store.Sync(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ref := range covered {
		delete(d.pending, ref)
	}
	return nil
}

// crash throws away the blobs not covered by a Sync, and returns those
// it threw away: every other one is deleted, the rest cut to half their
// length. With spare, every third one (in ref order) is spared: it
// reached the disk in time.
func (d *crashDriver) crash(t *testing.T, spare bool) []blobstore.Ref {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	var pending, lost []blobstore.Ref
	for ref := range d.pending {
		pending = append(pending, ref)
	}
	slices.SortFunc(pending, blobstore.Ref.Compare)
	for i, ref := range pending {
		if !spare || i%3 != 2 {
			lost = append(lost, ref)
		}
	}
	for i, ref := range lost {
		hex := ref.String()
		path := filepath.Join(d.Dir(), hex[:3], hex)
		if i%2 == 0 {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			continue
		}
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, info.Size()/2); err != nil {
			t.Fatal(err)
		}
	}
	d.pending = map[blobstore.Ref]bool{}
	return lost
}

// crashStaged is a staged blob of a crashDriver.
type crashStaged struct {
	blobstore.StagedBlob
	driver *crashDriver
	ref    blobstore.Ref
}

func (s *crashStaged) Publish(ctx context.Context) error {
	existed := s.driver.exists(ctx, s.ref)
	if err := s.StagedBlob.Publish(ctx); err != nil {
		return err
	}
	s.driver.stored(ctx, s.ref, existed)
	return nil
}
