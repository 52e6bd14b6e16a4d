// Command mkstore adds N blob records to a store's metadata, for the
// listing benchmarks: `ls -f` and `find -type f` of MOUNTPOINT/ref/ read
// only the metadata store (a listing opens no blob), so the records need
// no stored files. Each record is a 1 KiB blob made up from its number.
// With -mirror DIR it also makes, in DIR, an empty file of the same name,
// size (sparse) and modification time for each: the same listing on a
// local filesystem, to compare with, and a copy of ref/ that a second
// `rsync -a` finds nothing to transfer into.
//
//	go run ./test/bench/mkstore -store DIR -blobs 1000000 [-mirror DIR]
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
)

func main() {
	storeDir := flag.String("store", "", "the store directory (made with stofuse init)")
	blobs := flag.Int("blobs", 100_000, "how many blob records to add")
	volume := flag.String("volume", "default", "the volume that holds them")
	mirror := flag.String("mirror", "", "also make a sparse file of the same name, size and mtime for each, in this directory")
	flag.Parse()
	ctx := context.Background()
	meta, err := badger.Open(filepath.Join(*storeDir, "meta"))
	if err != nil {
		log.Fatal(err)
	}
	defer meta.Close()
	v, err := meta.Volume(ctx, *volume)
	if err != nil {
		log.Fatal(err)
	}
	start := time.Now()
	const batch = 100_000
	for done := 0; done < *blobs; done += batch {
		var metas []*diskaccess.BlobMeta
		for i := done; i < min(done+batch, *blobs); i++ {
			content := binary.BigEndian.AppendUint64([]byte("mkstore blob "), uint64(i))
			metas = append(metas, &diskaccess.BlobMeta{
				Ref: blobstore.RefOf(content), RealSize: 1024, SizeOnDisk: 1024 + 89,
				EncryptionKeyId: "dek-mkstore", ExpectedCrc32: []byte{0, 0, 0, 0}, Created: start,
			})
		}
		if err := meta.WriteBlobsCreated(ctx, metas, v.ID); err != nil {
			log.Fatal(err)
		}
		if *mirror != "" {
			if err := mirrorFiles(*mirror, metas); err != nil {
				log.Fatal(err)
			}
		}
	}
	fmt.Printf("added %d blob records to volume %q in %s\n", *blobs, v.Label, time.Since(start).Round(time.Millisecond))
}

// mirrorFiles makes a sparse file named, sized and timed as ref/ shows
// each blob.
func mirrorFiles(dir string, metas []*diskaccess.BlobMeta) error {
	for _, meta := range metas {
		path := filepath.Join(dir, meta.Ref.String())
		if err := os.WriteFile(path, nil, 0o444); err != nil {
			return err
		}
		if err := os.Truncate(path, meta.RealSize); err != nil {
			return err
		}
		if err := os.Chtimes(path, meta.Created, meta.Created); err != nil {
			return err
		}
	}
	return nil
}
