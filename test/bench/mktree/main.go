// Command mktree makes a tree of small files for the snapshot benchmark:
// DIRS directories dNNN under DIR, each with FILES files fNNNN of a few
// bytes (each file's content differs), written by WORKERS goroutines at
// once, through the mount or anywhere else. Prints how long it took.
//
//	go run ./test/bench/mktree -dirs 100 -files 1000 MOUNTPOINT/files/default/big
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync"
	"time"
)

func main() {
	dirs := flag.Int("dirs", 100, "how many directories")
	files := flag.Int("files", 1000, "files per directory")
	workers := flag.Int("workers", 8, "files written at once")
	flag.Parse()
	if flag.NArg() != 1 {
		log.Fatal("usage: mktree [-dirs N] [-files N] [-workers N] DIR")
	}
	root := flag.Arg(0)
	start := time.Now()
	type job struct{ dir, file int }
	jobs := make(chan job, 1024)
	var wg sync.WaitGroup
	var once sync.Once
	var failed error
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				path := filepath.Join(root, fmt.Sprintf("d%03d", j.dir), fmt.Sprintf("f%04d", j.file))
				content := fmt.Sprintf("mktree file d%03d/f%04d\n", j.dir, j.file)
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					once.Do(func() { failed = err })
				}
			}
		}()
	}
	for d := range *dirs {
		if err := os.MkdirAll(filepath.Join(root, fmt.Sprintf("d%03d", d)), 0o755); err != nil {
			log.Fatal(err)
		}
		for f := range *files {
			jobs <- job{d, f}
		}
	}
	close(jobs)
	wg.Wait()
	if failed != nil {
		log.Fatal(failed)
	}
	n := *dirs * *files
	elapsed := time.Since(start)
	fmt.Printf("made %d files in %d directories in %s (%.0f files/s)\n", n, *dirs, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
}
