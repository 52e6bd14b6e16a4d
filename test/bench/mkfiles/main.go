// Command mkfiles adds a large files/ tree to a store's metadata, for the
// snapshot benchmarks: DIRS directories of FILES files each under
// files/<collection>/, every file's content one small blob, written in
// batches (as recovery restores a tree) rather than a transaction per
// file, so that a million entries take seconds. With -touch it instead
// changes the mode of one file of that tree, as a chmod through the mount
// would.
//
//	go run ./test/bench/mkfiles -store DIR -collection big -dirs 1000 -files 1000 [-tree N]
//	go run ./test/bench/mkfiles -store DIR -collection big -touch
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/stofuse/stofuse/keyring"
	"github.com/stofuse/stofuse/metastore"
	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/store"
)

// inoBlock is how far apart the inode numbers of the trees of -tree 0,
// 1, 2... start: far above what the store hands out (Restorer.Finish
// moves its counter past them).
const inoBlock = 1 << 40

func main() {
	storeDir := flag.String("store", "", "the store directory (made with stofuse init, key file inside)")
	collection := flag.String("collection", "big", "the collection to make (or, with -touch, to change)")
	dirs := flag.Int("dirs", 1000, "directories")
	files := flag.Int("files", 1000, "files per directory")
	touch := flag.Bool("touch", false, "change the mode of one file instead")
	tree := flag.Int("tree", 0, "a number for this tree, distinct for each tree made in one store (its inode numbers)")
	flag.Parse()
	ctx := context.Background()
	kek, err := keyring.LoadKeyFile(store.KeyFileInsidePath(*storeDir))
	check(err)
	s, err := store.Open(ctx, *storeDir, store.WithKey(store.KEK(kek)))
	check(err)
	defer s.Close()
	if *touch {
		check(touchOne(ctx, s, *collection))
		return
	}
	start := time.Now()
	check(makeTree(ctx, s, *collection, *dirs, *files, metastore.TreeInoBase|uint64(*tree+1)*inoBlock))
	fmt.Printf("made %d directories of %d files in %.1f s\n", *dirs, *files, time.Since(start).Seconds())
}

func makeTree(ctx context.Context, s *store.Store, collection string, dirs, files int, firstIno uint64) error {
	c, err := s.CreateCollection(ctx, collection)
	if err != nil {
		return err
	}
	v, err := s.Volume(ctx, store.DefaultVolume)
	if err != nil {
		return err
	}
	ref, size, err := s.Put(ctx, v.ID, collection, bytes.NewReader([]byte("the same small content")), nil)
	if err != nil {
		return err
	}
	meta, err := s.Stat(ctx, ref)
	if err != nil {
		return err
	}
	now := time.Now()
	r := s.Meta().NewRestorer()
	defer r.Cancel()
	ino := firstIno
	for d := range dirs {
		dir := &badger.Inode{Ino: ino, Kind: badger.KindDir, Mode: 0o755, Mtime: now, Ctime: now}
		ino++
		if err := r.Add(c.FolderIno, fmt.Sprintf("d%04d", d), dir, nil); err != nil {
			return err
		}
		for f := range files {
			file := &badger.Inode{Ino: ino, Kind: badger.KindFile, Mode: 0o644, Size: size, Mtime: now, Ctime: now,
				Ref: ref, StoredSize: meta.Stored, Committed: true}
			ino++
			if err := r.Add(dir.Ino, fmt.Sprintf("f%05d", f), file, nil); err != nil {
				return err
			}
		}
	}
	return r.Finish(ctx)
}

func touchOne(ctx context.Context, s *store.Store, collection string) error {
	c, err := s.Collection(ctx, collection)
	if err != nil {
		return err
	}
	dir, err := s.Meta().Lookup(ctx, c.FolderIno, "d0000")
	if err != nil {
		return err
	}
	file, err := s.Meta().Lookup(ctx, dir.Ino, "f00000")
	if err != nil {
		return err
	}
	_, err = s.Meta().SetAttr(ctx, file.Ino, func(n *badger.Inode) error { n.Mode ^= 0o100; return nil })
	return err
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
