package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// A store whose directory cannot be written (read-only media, or a
// directory this user may not write) is opened read-only by the commands
// that only read (readOnlyCommand): nothing is written into it. What a
// command or a mount would keep inside the store goes to the runtime
// directory instead (runtimeDir): the mount daemon's control socket and
// its log (--background); a read-only mount spools nothing. A private
// copy of the metadata, when the open needs one (store.ReadOnly), is made
// under os.TempDir(). Every other command is refused with one error
// (readOnlyStoreError) before it opens the store.

// notWritable says why this process cannot write in the store directory
// dir or its metadata directory, or nil if it can (or they do not exist
// yet, so the store is made there).
func notWritable(dir string) error {
	for _, path := range []string{dir, filepath.Join(dir, "meta")} {
		err := unix.Access(path, unix.W_OK)
		if errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			return &os.PathError{Op: "write", Path: path, Err: err}
		}
	}
	return nil
}

// readOnlyCommand reports whether the command c runs works on a store
// that cannot be written.
func readOnlyCommand(c *cli.Context) bool {
	switch c.Command.Name {
	case "cat", "stat", "status":
		return true
	case "scrub":
		return !c.Bool("repair")
	case "mount":
		return c.Bool("read-only")
	}
	return false
}

// readOnlyStoreError is the error of a command that must write to a store
// that cannot be written (why: notWritable's error).
func readOnlyStoreError(c *cli.Context, dir string, why error) error {
	what := "is on a read-only filesystem"
	if !errors.Is(why, syscall.EROFS) {
		what = "cannot be written by this user"
	}
	command := "stofuse " + c.Command.Name
	if c.Command.Name == "mount" {
		command += " (without --read-only)"
	}
	if c.Command.Name == "scrub" {
		command += " --repair"
	}
	return fmt.Errorf("store %s %s (%v), and %s writes to it: make it writable (a read-only mount: mount -o remount,rw), "+
		"or copy the store to a writable disk; stofuse cat, stat, scrub, status and mount --read-only work as it is",
		dir, what, why, command)
}

// runtimeDir is where a store that cannot be written has its daemon's
// control socket and log: $XDG_RUNTIME_DIR/stofuse, else /run/stofuse for
// root, else stofuse-UID in os.TempDir(); the daemon makes it (mode 0700).
func runtimeDir() string {
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "stofuse")
	}
	if os.Geteuid() == 0 {
		return "/run/stofuse"
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("stofuse-%d", os.Geteuid()))
}

// runtimePath is the runtime directory's file for store dir (by the
// SHA-256 of its absolute path) with suffix (".sock", ".mount.log").
func runtimePath(dir, suffix string) string {
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join(runtimeDir(), hex.EncodeToString(sum[:12])+suffix)
}

// makeRuntimeDir makes the runtime directory if it is not there, and
// checks that it is this user's alone: another user's could serve them a
// socket of their own.
func makeRuntimeDir() error {
	dir := runtimeDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("runtime directory: %w", err)
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("runtime directory: %w", err)
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !info.IsDir() || !ok || int(st.Uid) != os.Geteuid() || info.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("runtime directory %s is not a directory of this user's alone (mode 0700)", dir)
	}
	return nil
}

// mountLogPath is where a --background mount logs: STORE/mount.log, or in
// the runtime directory for a store that cannot be written.
func mountLogPath(dir string) (string, error) {
	if notWritable(dir) == nil {
		return filepath.Join(dir, "mount.log"), nil
	}
	return runtimePath(dir, ".mount.log"), makeRuntimeDir()
}

// dialDaemon connects to the mount daemon of store dir: its socket in the
// store, else in the runtime directory (where the daemon of a store it
// cannot write listens; a client that cannot write the store would not
// know which the daemon chose, so it tries both). An error that says a
// socket is there but not this user's (EACCES, EPERM) wins over one that
// says there is none.
func dialDaemon(dir string) (net.Conn, error) {
	var firstErr error
	for _, path := range []string{filepath.Join(dir, "control.sock"), runtimePath(dir, ".sock")} {
		conn, err := net.Dial("unix", path)
		if err == nil {
			return conn, nil
		}
		if firstErr == nil || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			firstErr = err
		}
	}
	return nil, firstErr
}
