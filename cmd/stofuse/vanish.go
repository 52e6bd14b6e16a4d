package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// A mount daemon's store can vanish under it: its directory removed, its
// disk unplugged, its filesystem lazily unmounted. Badger does not notice
// (it goes on in its memory maps and open files) until it must make a
// file, and then retries for ever; its Close never returns. So the daemon
// watches the store's directory (watchStore), and once it is gone makes
// the store fail every read and write (store.Store.Fail: the mount
// answers EIO) and says so in its log; and its last Close is bounded
// (closeWithin), so that after an unmount it exits.

// storeWatchInterval is how often a mount daemon checks that its store's
// directory is still there.
const storeWatchInterval = time.Second

// errStoreGone is what the reads and writes of a store whose directory is
// gone fail with.
var errStoreGone = errors.New("the store's directory is gone (removed, or its disk unplugged or unmounted)")

// storeWatch is a running watch of a store's directory.
type storeWatch struct {
	gone atomic.Bool
	stop chan struct{}
	done chan struct{}
}

// watchStore checks every storeWatchInterval that the store's metadata
// directory is the one opened (the same inode on the same device: a
// lazily unmounted filesystem leaves its path to whatever is beneath).
func watchStore(s *session, mountpoint string) (*storeWatch, error) {
	metaDir := filepath.Join(s.Dir(), "meta")
	opened, err := os.Stat(metaDir)
	if err != nil {
		return nil, err
	}
	w := &storeWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		ticker := time.NewTicker(storeWatchInterval)
		defer ticker.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-ticker.C:
			}
			now, err := os.Stat(metaDir)
			if err == nil && os.SameFile(opened, now) {
				continue
			}
			why := "it is another directory now"
			if err != nil {
				why = err.Error()
			}
			s.Fail(fmt.Errorf("%w: %s (%s)", errStoreGone, s.Dir(), why))
			w.gone.Store(true)
			s.out.warnf("store %s is gone (%s): every read and write in %s fails with EIO from now on; "+
				"unmount it (stofuse unmount %s), and the daemon exits. What was committed before is on the store's disk",
				s.Dir(), why, mountpoint, mountpoint)
			return
		}
	}()
	return w, nil
}

// Stop ends the watch.
func (w *storeWatch) Stop() {
	close(w.stop)
	<-w.done
}

// Gone reports whether the watch found the store gone.
func (w *storeWatch) Gone() bool { return w.gone.Load() }

// closeWithin closes the store, waiting at most timeout, and returns
// Close's error; if Close has not returned by then (Badger's, on a
// directory that is gone), it gives up with an error saying so, and the
// process must exit without it.
func closeWithin(s *session, timeout time.Duration) error {
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("the metadata of store %s did not close within %s (its database cannot write its files: "+
			"is the store's disk gone?); exiting without it: what was committed before is on the store's disk, "+
			"and the next open replays the rest of its logs", s.Dir(), timeout)
	}
}
