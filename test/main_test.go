// Package test holds stofuse's end-to-end tests: they build the stofuse
// binary and drive it as a user would, with real stores on disk, real FUSE
// mounts and real cp, rsync, tar and sha256sum.
package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// stofuseBin is the binary built once for all tests.
var stofuseBin string

func TestMain(m *testing.M) {
	if dir := os.Getenv(signalledWriterEnv); dir != "" {
		os.Exit(signalledWriter(dir))
	}
	if arg := os.Getenv(lockerEnv); arg != "" {
		os.Exit(locker(arg))
	}
	if path := os.Getenv(mapperEnv); path != "" {
		os.Exit(mapper(path))
	}
	dir, err := os.MkdirTemp("", "stofuse-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	stofuseBin = filepath.Join(dir, "stofuse")
	build := exec.Command("go", "build", "-o", stofuseBin, "github.com/stofuse/stofuse/cmd/stofuse")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building stofuse:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
