package main

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// A --background daemon logs to STORE/mount.log, on the store's
// filesystem, which may fill up: the log would then lose its lines, the
// trace of a crash among them. So the log keeps logRoom allocated past
// its end (fallocate(2) with FALLOC_FL_KEEP_SIZE): its appends write into
// blocks it holds already, on a full filesystem too. The parent allocates
// it before it starts the daemon, and the daemon tops it up every
// logRoomEvery while there is room.
const (
	logRoom      = 1 << 20
	logRoomEvery = 5 * time.Second
)

// keepLogRoom allocates logRoom past the end of f, if it is a regular
// file. On a full filesystem it allocates what it can; what is allocated
// already stays.
func keepLogRoom(f *os.File) {
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		return
	}
	unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, info.Size(), logRoom)
}

// keepingLogRoom runs keepLogRoom on f every logRoomEvery until stop.
func keepingLogRoom(f *os.File) (stop func()) {
	done := make(chan struct{})
	go func() {
		ticker := time.NewTicker(logRoomEvery)
		defer ticker.Stop()
		for {
			keepLogRoom(f)
			select {
			case <-done:
				return
			case <-ticker.C:
			}
		}
	}()
	return func() { close(done) }
}
