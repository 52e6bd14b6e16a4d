package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/stofuse/stofuse/fusefs"
)

// mountKernel asks the kernel to mount root at mountpoint: as root with
// mount(2) itself, otherwise through fusermount3. When the kernel (or
// fusermount3) refuses, the error says why in one line: mount(2)'s errno
// as root, otherwise what fusermount3 printed. go-fuse gives fusermount3
// this process's stderr and reports only its exit status ("fusermount
// exited with code 256"), so the reason would otherwise be on the
// terminal a line apart from the error, or only in a --background
// mount's log.
func mountKernel(mountpoint string, root *fusefs.Root, opts *fs.Options) (*fuse.Server, error) {
	if os.Geteuid() == 0 {
		// Strict: fusermount3 run by root makes the same mount(2), so a
		// fallback to it would only replace the reason with its own.
		opts.MountOptions.DirectMountStrict = true
		server, err := fusefs.Mount(mountpoint, root, opts)
		if err != nil {
			return nil, directMountError(mountpoint, err)
		}
		return server, nil
	}
	var server *fuse.Server
	said, err := catchStderr(fusermountLine, func() error {
		var err error
		server, err = fusefs.Mount(mountpoint, root, opts)
		return err
	})
	if err != nil {
		return nil, fusermountError(mountpoint, said, err)
	}
	return server, nil
}

// directMountError is why mount(2) refused, as root.
func directMountError(mountpoint string, err error) error {
	if errors.Is(err, syscall.EPERM) && !hasCapSysAdmin() {
		return fmt.Errorf("mounting %s: %v: mount(2) needs CAP_SYS_ADMIN, which this process does not have "+
			"(a container must be given it, and /dev/fuse)", mountpoint, err)
	}
	return fmt.Errorf("mounting %s: %v", mountpoint, strings.TrimSpace(err.Error()))
}

// hasCapSysAdmin reports whether this process may mount(2).
func hasCapSysAdmin() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return true // cannot tell: say nothing about it
	}
	return data[unix.CAP_SYS_ADMIN/32].Effective&(1<<(unix.CAP_SYS_ADMIN%32)) != 0
}

// fusermountError is why a mount through fusermount3 failed: the lines
// fusermount3 printed (without its directory: "fusermount3: ..."), else
// go-fuse's error.
func fusermountError(mountpoint string, said []string, err error) error {
	reason := strings.TrimSpace(err.Error())
	if len(said) > 0 {
		reason = strings.Join(said, "; ")
	}
	return fmt.Errorf("mounting %s: %s", mountpoint, reason)
}

// fusermountLine returns a line of stderr that fusermount3 printed with
// its directory taken off, or "" for a line of anyone else's.
func fusermountLine(line string) string {
	name, rest, ok := strings.Cut(line, ": ")
	if base := filepath.Base(name); ok && strings.HasPrefix(base, "fusermount") && !strings.ContainsAny(base, " \t") {
		return base + ": " + rest
	}
	return ""
}

// stderrDrainWait bounds how long catchStderr waits, after fn, for the
// last writer of the pipe (a child process fn started) to let go of it.
const stderrDrainWait = 2 * time.Second

// catchStderr runs fn with this process's stderr (fd 2) pointed at a
// pipe, and returns the lines written there meanwhile (by this process
// or the children it started) that keep turns into something other than
// "", as keep turned them. The other lines are passed on to the real
// stderr, so that nothing another goroutine printed in between is lost.
// If the pipe cannot be set up, fn runs with stderr as it is.
func catchStderr(keep func(line string) string, fn func() error) ([]string, error) {
	saved, err := unix.FcntlInt(2, unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fn()
	}
	defer unix.Close(saved)
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fn()
	}
	defer r.Close()
	err = unix.Dup3(int(w.Fd()), 2, 0) // Fd makes the pipe blocking, as stderr is
	w.Close()
	if err != nil {
		return nil, fn()
	}
	caught := &caughtLines{keep: keep, passOn: saved}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		lines := bufio.NewReader(r)
		for {
			text, err := lines.ReadString('\n')
			if text != "" {
				caught.line(strings.TrimSuffix(text, "\n"))
			}
			if err != nil {
				return
			}
		}
	}()
	fnErr := fn()
	unix.Dup3(saved, 2, 0) // closes the pipe's fd 2: EOF once fn's children are gone
	select {
	case <-drained:
	case <-time.After(stderrDrainWait):
		r.SetReadDeadline(time.Now()) // a child still holds it: stop reading
		<-drained
	}
	return caught.kept, fnErr
}

// caughtLines sorts the lines catchStderr caught: kept, or passed on.
type caughtLines struct {
	keep   func(string) string
	passOn int // the real stderr
	kept   []string
}

func (c *caughtLines) line(text string) {
	if kept := c.keep(text); kept != "" {
		c.kept = append(c.kept, kept)
		return
	}
	unix.Write(c.passOn, []byte(text+"\n"))
}
