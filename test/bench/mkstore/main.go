// Command mkstore adds N blob records to a store's metadata, for the
// listing benchmarks: `ls -f` and `find -type f` of MOUNTPOINT/ref/ read
// only the metadata store (a listing opens no blob), so the records need
// no stored files. Each record is a 1 KiB blob made up from its number.
//
//	go run ./test/bench/mkstore -store DIR -blobs 1000000
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
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
	}
	fmt.Printf("added %d blob records to volume %q in %s\n", *blobs, v.Label, time.Since(start).Round(time.Millisecond))
}
