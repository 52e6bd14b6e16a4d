package test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestCLI runs the scripts in testdata/cli against the built binary. Each
// script has its own store in $WORK/store.
func TestCLI(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/cli",
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", filepath.Dir(stofuseBin)+string(os.PathListSeparator)+env.Getenv("PATH"))
			env.Setenv("STOFUSE_STORE", filepath.Join(env.WorkDir, "store"))
			env.Setenv("HOME", env.WorkDir)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":  cmdExits,
			"damage": cmdDamage,
			"stored": cmdStored,
		},
	})
}

// exits CODE PROGRAM [ARGS...] runs a program and checks its exit code;
// its stdout and stderr are then checked as after exec.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: %v", err)
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			ts.Fatalf("exits: %v", err)
		}
		got = exit.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// storedPath is where a localfs volume keeps a blob.
func storedPath(volumeDir, ref string) string {
	return filepath.Join(volumeDir, ref[:3], ref)
}

// damage VOLUME_DIR REF OFFSET flips one bit of a stored blob.
func cmdDamage(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: damage VOLUME_DIR REF OFFSET")
	}
	path := storedPath(ts.MkAbs(args[0]), args[1])
	offset, err := strconv.ParseInt(args[2], 10, 64)
	ts.Check(err)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	ts.Check(err)
	defer f.Close()
	b := make([]byte, 1)
	_, err = f.ReadAt(b, offset)
	ts.Check(err)
	b[0] ^= 0x20
	_, err = f.WriteAt(b, offset)
	ts.Check(err)
}

// stored VOLUME_DIR REF checks that the volume holds the blob (! stored:
// that it does not).
func cmdStored(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: stored VOLUME_DIR REF")
	}
	_, err := os.Stat(storedPath(ts.MkAbs(args[0]), args[1]))
	if neg && err == nil {
		ts.Fatalf("volume %s holds %s", args[0], args[1])
	}
	if !neg && err != nil {
		ts.Fatalf("volume %s does not hold %s: %v", args[0], args[1], err)
	}
}
