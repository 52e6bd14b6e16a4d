package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/store"
)

// hookMount is a store.Mount that holds nothing and runs hook the first
// time a collection asks what it holds from inside its condemning
// transaction (the search asks once before, outside).
type hookMount struct {
	calls int
	once  sync.Once
	hook  func()
}

func (m *hookMount) HeldBlobs(fn func(blobstore.Ref)) {
	m.calls++
	if m.calls > 1 {
		m.once.Do(m.hook)
	}
}
func (m *hookMount) BrowsedSnapshots(fn func(blobstore.Ref))         {}
func (m *hookMount) BlobsRemoved(volumeID int, refs []blobstore.Ref) {}

// storeAsFile stores content as blob ref the way a file of files/ is
// committed (fusefs: a BlobWriter whose RecordFunc commits the file's
// content, recording the blob too when it is new), into file ino; a blob
// removed while it was written is stored again, as fusefs does.
func storeAsFile(ctx context.Context, s *store.Store, volumeID int, ino uint64, ref blobstore.Ref, content []byte) error {
	once := func() error {
		w, err := s.Controller().NewBlobWriter(ctx, volumeID, "photos", ref, diskaccess.WriteOptions{})
		if err != nil {
			return err
		}
		if _, err := w.Write(content); err != nil {
			w.Abort()
			return err
		}
		size := int64(len(content))
		_, err = w.CommitWith(ctx, func(ctx context.Context, meta *diskaccess.BlobMeta, created bool) error {
			if created {
				_, err := s.Meta().CommitNewContent(ctx, ino, meta, volumeID, size, time.Now(), nil)
				return err
			}
			_, err := s.Meta().CommitContent(ctx, ino, ref, size, meta.SizeOnDisk, time.Now(), nil)
			return err
		})
		return err
	}
	err := once()
	if errors.Is(err, diskaccess.ErrRemovedWhileWritten) {
		err = once()
	}
	return err
}

// TestCollectGarbageBesideAWriter: a writer stores, as the content of a
// file of files/, a garbage blob that the collection is condemning right
// then: it begins (finds the blob stored, so seals nothing) and tries to
// commit from inside the condemning transaction, after that transaction
// read the metadata. The blob must survive whichever wins: the writer
// waits for the blob's lock, which the collection holds while it
// condemns, then finds the blob gone and stores it anew; and the file
// reads back. Without the lock the writer's use of the blob commits
// unseen by the condemning transaction (Badger sees no conflict on a key
// added under a prefix it read), and the blob under the file is removed.
func TestCollectGarbageBesideAWriter(t *testing.T) {
	ctx := context.Background()
	f := newGCFixture(t, 4)
	v, _ := f.s.Volume(ctx, store.DefaultVolume)
	content := []byte(fmt.Sprintf("deleted %d %s", 2, strings.Repeat("x", 2000)))
	ref := blobstore.RefOf(content)
	if !containsRef(f.garbage, ref) {
		t.Fatalf("blob %s is not garbage in the fixture", ref)
	}
	n, err := f.s.Meta().Create(ctx, f.folder, "stored again", &badger.Inode{Kind: badger.KindFile, Mode: 0o644, Mtime: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	written := make(chan error, 1)
	mount := &hookMount{hook: func() {
		go func() { written <- storeAsFile(ctx, f.s, v.ID, n.Ino, ref, content) }()
		// Give the writer the chance to commit inside the transaction;
		// with the lock held it cannot, and the wait ends unanswered.
		select {
		case err := <-written:
			written <- err
		case <-time.After(time.Second):
		}
	}}
	r, err := f.s.CollectGarbage(ctx, store.GCOptions{Mount: mount})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-written; err != nil {
		t.Fatalf("the writer beside the collection: %v", err)
	}
	t.Logf("collected beside the writer: %d garbage, %d kept, freed %+v", r.Garbage, r.Kept, r.Freed)
	record, err := f.s.Meta().Inode(ctx, n.Ino)
	if err != nil || record.Ref != ref {
		t.Fatalf("the file written beside the collection: %+v, %v; want content %s", record, err, ref)
	}
	f.live[ref] = content
	f.check(t, map[blobstore.Ref]bool{ref: true})
	var got bytes.Buffer
	if err := f.s.Cat(ctx, ref, &got, nil); err != nil || !bytes.Equal(got.Bytes(), content) {
		t.Fatalf("the file's blob after the collection: %v", err)
	}
}

func containsRef(refs []blobstore.Ref, ref blobstore.Ref) bool {
	for _, r := range refs {
		if r == ref {
			return true
		}
	}
	return false
}
