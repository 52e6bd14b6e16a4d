// Command mkgcstore fills a store for the gc benchmark of a million blobs
// (test/bench/gc_million.sh): BLOBS blobs of a few bytes each (each its
// own content), sealed with the collection's key, stored on the default
// (local) volume and recorded, as a put would store them but many at once
// (stored under WithDeferredSync, the volume synced and the records
// written in batches). The first half are the contents of the files of a
// files/ tree in the new collection COLLECTION (directories of PER-DIR
// files), snapshotted once; the other half are used by nothing (stored
// and never explicit: what files deleted from files/ leave behind), the
// garbage a gc is to remove. The store is real: a mount reads every file,
// and a scrub finds every blob whole.
//
//	go run ./test/bench/mkgcstore -store DIR -blobs 1000000 [-collection gc] [-per-dir 500] [-snapshot=false]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/keyring"
	"github.com/stofuse/stofuse/metastore"
	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/store"
)

// batch is how many blobs are stored between two syncs of the volume,
// each followed by the batch's records.
const batch = 20_000

func main() {
	storeDir := flag.String("store", "", "the store directory (made with stofuse init, key file inside)")
	blobs := flag.Int("blobs", 1_000_000, "blobs to store: half used by files, half by nothing")
	collection := flag.String("collection", "gc", "the collection to make, whose files use half of the blobs")
	perDir := flag.Int("per-dir", 500, "files per directory of the tree")
	workers := flag.Int("workers", 2, "blobs sealed and written at once")
	snapshot := flag.Bool("snapshot", true, "snapshot the tree once")
	flag.Parse()
	ctx := context.Background()
	kek, err := keyring.LoadKeyFile(store.KeyFileInsidePath(*storeDir))
	check(err)
	s, err := store.Open(ctx, *storeDir, store.WithKey(store.KEK(kek)))
	check(err)
	defer s.Close()
	c, err := s.CreateCollection(ctx, *collection)
	check(err)
	v, err := s.Volume(ctx, store.DefaultVolume)
	check(err)
	start := time.Now()
	used := make([]*diskaccess.BlobMeta, 0, *blobs/2)
	for done := 0; done < *blobs; done += batch {
		metas, err := storeBatch(ctx, s, v.ID, c.Name, done, min(done+batch, *blobs), *workers)
		check(err)
		for i, meta := range metas {
			if done+i < *blobs/2 {
				used = append(used, meta)
			}
		}
		if done/batch%10 == 9 {
			fmt.Printf("stored %d blobs in %.0f s\n", done+len(metas), time.Since(start).Seconds())
		}
	}
	fmt.Printf("stored %d blobs in %.1f s\n", *blobs, time.Since(start).Seconds())
	start = time.Now()
	check(makeTree(ctx, s, c, used, *perDir))
	fmt.Printf("made a tree of %d files in %d-file directories in %.1f s\n", len(used), *perDir, time.Since(start).Seconds())
	if *snapshot {
		start = time.Now()
		_, err := s.Snapshot(ctx, c.Name, v.ID)
		check(err)
		fmt.Printf("snapshotted it in %.1f s\n", time.Since(start).Seconds())
	}
	check(s.Sync(ctx))
}

// content is blob i's plaintext.
func content(i int) []byte { return fmt.Appendf(nil, "mkgcstore blob %d\n", i) }

// storeBatch stores blobs first to end-1 on the volume, syncs it, then
// records them, and returns their metadata in order.
func storeBatch(ctx context.Context, s *store.Store, volumeID int, collection string, first, end, workers int) ([]*diskaccess.BlobMeta, error) {
	metas := make([]*diskaccess.BlobMeta, end-first)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			deferred := blobstore.WithDeferredSync(ctx)
			for i := first + w; i < end && errs[w] == nil; i += workers {
				metas[i-first], errs[w] = storeOne(deferred, s, volumeID, collection, content(i))
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	// The bytes are durable before their records are written.
	if err := s.Controller().Sync(ctx, volumeID); err != nil {
		return nil, err
	}
	return metas, s.Meta().WriteBlobsCreated(ctx, metas, volumeID)
}

// storeOne seals and writes one blob, and returns its metadata without
// recording it: the batch's records are written together once its bytes
// are synced (the record function's duty to record, which it hands on to
// storeBatch).
func storeOne(ctx context.Context, s *store.Store, volumeID int, collection string, plain []byte) (*diskaccess.BlobMeta, error) {
	ref := blobstore.RefOf(plain)
	w, err := s.Controller().NewBlobWriter(ctx, volumeID, collection, ref, diskaccess.WriteOptions{})
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plain); err != nil {
		w.Abort()
		return nil, err
	}
	return w.CommitWith(ctx, func(ctx context.Context, meta *diskaccess.BlobMeta, created bool) error {
		if !created {
			return fmt.Errorf("blob %s was stored already", meta.Ref)
		}
		return nil
	})
}

// makeTree restores the collection's folder as directories dNNNN of
// perDir files fNNNNN, file k's content being used[k].
func makeTree(ctx context.Context, s *store.Store, c *badger.Collection, used []*diskaccess.BlobMeta, perDir int) error {
	r := s.Meta().NewRestorer()
	defer r.Cancel()
	now := time.Now()
	ino := uint64(metastore.TreeInoBase | 1<<40) // far above what the store hands out (Finish moves its counter past)
	var dir *badger.Inode
	for k, meta := range used {
		if k%perDir == 0 {
			dir = &badger.Inode{Ino: ino, Kind: badger.KindDir, Mode: 0o755, Mtime: now, Ctime: now}
			ino++
			if err := r.Add(c.FolderIno, fmt.Sprintf("d%04d", k/perDir), dir, nil); err != nil {
				return err
			}
		}
		file := &badger.Inode{Ino: ino, Kind: badger.KindFile, Mode: 0o644, Size: meta.RealSize, Mtime: now, Ctime: now,
			Ref: meta.Ref, StoredSize: meta.SizeOnDisk, Committed: true}
		ino++
		if err := r.Add(dir.Ino, fmt.Sprintf("f%05d", k%perDir), file, nil); err != nil {
			return err
		}
	}
	return r.Finish(ctx)
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
