// Command writelat measures small-file write latency: it creates up to N
// files of SIZE bytes (random) in DIR, timing each create, write and close
// (a file through the mount is stored at close), and prints how many
// files it wrote, the median and the 99th percentile in milliseconds.
// With -while PID it stops early once process PID has exited, so that
// every sample is taken while that process (a snapshot) runs.
//
//	go run ./test/bench/writelat -n 2000 -size 4096 [-while PID] DIR
package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 2000, "how many files, at most")
	size := flag.Int("size", 4096, "bytes per file")
	while := flag.Int("while", 0, "stop once this process has exited (0: write all N)")
	flag.Parse()
	if flag.NArg() != 1 {
		log.Fatal("usage: writelat [-n N] [-size BYTES] [-while PID] DIR")
	}
	dir := flag.Arg(0)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, *size)
	latencies := make([]time.Duration, 0, *n)
	for i := range *n {
		if *while != 0 && !alive(*while) {
			break
		}
		rand.Read(buf) // every file a new blob
		start := time.Now()
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("w%06d", i)))
		if err != nil {
			log.Fatal(err)
		}
		if _, err := f.Write(buf); err != nil {
			log.Fatal(err)
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
		latencies = append(latencies, time.Since(start))
	}
	if len(latencies) == 0 {
		log.Fatal("no file written")
	}
	slices.Sort(latencies)
	pct := func(p int) float64 {
		return float64(latencies[(len(latencies)-1)*p/100].Microseconds()) / 1000
	}
	fmt.Printf("%d %.2f %.2f\n", len(latencies), pct(50), pct(99))
}

// alive reports whether process pid is running (a zombie counts as gone).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command's closing parenthesis.
	i := len(stat) - 1
	for i > 0 && stat[i] != ')' {
		i--
	}
	return i+2 >= len(stat) || stat[i+2] != 'Z'
}
