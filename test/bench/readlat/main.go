// Command readlat measures read latency: N reads of SIZE bytes at random
// offsets of FILE (kernel readahead off), and prints the median, the 90th
// and the 99th percentile in milliseconds.
//
//	go run ./test/bench/readlat -n 300 -size 131072 FILE
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	n := flag.Int("n", 300, "how many reads")
	size := flag.Int("size", 128<<10, "bytes per read")
	flag.Parse()
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		log.Fatal(err)
	}
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM) // one request per read
	buf := make([]byte, *size)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	latencies := make([]time.Duration, *n)
	for i := range latencies {
		off := rng.Int64N(info.Size()-int64(*size)) &^ 4095
		start := time.Now()
		if _, err := f.ReadAt(buf, off); err != nil {
			log.Fatal(err)
		}
		latencies[i] = time.Since(start)
	}
	slices.Sort(latencies)
	pct := func(p int) float64 { return float64(latencies[len(latencies)*p/100].Microseconds()) / 1000 }
	fmt.Printf("%.2f %.2f %.2f\n", pct(50), pct(90), pct(99))
}
