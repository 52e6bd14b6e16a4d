// Command inprocess reads or writes one blob through the Controller in
// this process, with no mount: the baseline the mount is measured against.
//
//	go run ./test/bench/inprocess -store DIR -fetch REF
//	go run ./test/bench/inprocess -store DIR -write FILE
//
// -cpuprofile FILE writes a CPU profile of the timed part.
//
// It prints the MB/s (10^6 bytes per second) of plaintext.
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"runtime/pprof"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/keyring"
	"github.com/stofuse/stofuse/store"
)

func main() {
	storeDir := flag.String("store", "", "the store directory (with its key file inside)")
	fetch := flag.String("fetch", "", "read this blob")
	write := flag.String("write", "", "store this file (its SHA-256 is taken first, not timed)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the timed part to this file")
	flag.Parse()
	ctx := context.Background()
	kek, err := keyring.LoadKeyFile(store.KeyFileInsidePath(*storeDir))
	check(err)
	st, err := store.Open(ctx, *storeDir, store.WithKey(store.KEK(kek)))
	check(err)
	defer st.Close()
	v, err := st.Volume(ctx, store.DefaultVolume)
	check(err)
	ctl := st.Controller()

	var ref blobstore.Ref
	if *write != "" {
		ref = hashFile(*write)
	}
	if *cpuProfile != "" {
		out, err := os.Create(*cpuProfile)
		check(err)
		check(pprof.StartCPUProfile(out))
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	var n int64
	switch {
	case *fetch != "":
		ref, err := blobstore.ParseRef(*fetch)
		check(err)
		rc, err := ctl.Fetch(ctx, ref, st.Meta().Ring(), v.ID)
		check(err)
		n, err = io.Copy(io.Discard, rc)
		check(err)
		rc.Close()
	case *write != "":
		f, err := os.Open(*write)
		check(err)
		info, _ := f.Stat()
		n = info.Size()
		check(ctl.WriteBlob(ctx, v.ID, store.DefaultCollection, ref, f, true))
		f.Close()
	default:
		log.Fatal("give -fetch REF or -write FILE")
	}
	fmt.Printf("%.1f\n", float64(n)/time.Since(start).Seconds()/1e6)
}

func hashFile(path string) blobstore.Ref {
	f, err := os.Open(path)
	check(err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	check(err)
	return blobstore.Ref(h.Sum(nil))
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
