package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// snapshotList is what stofuse snapshot ls says of the default collection:
// the names, oldest first.
func snapshotList(t *testing.T, s *store) []string {
	t.Helper()
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(s.mustRun("snapshot", "ls", "default")), "\n") {
		if fields := strings.Fields(line); len(fields) == 2 && fields[0] == "default" {
			names = append(names, fields[1])
		}
	}
	return names
}

// TestForget: forget through a mount's daemon and without one: refused
// without a rule, a dry run that lists what it would do and changes
// nothing, a forget that snapshots/ shows at once, and a recover that does
// not bring the forgotten snapshots back.
func TestForget(t *testing.T) {
	s := newStore(t)
	m := s.mount()
	files := filepath.Join(m.dir, "files", "default")
	for i := range 3 {
		sh(t, fmt.Sprintf("echo version %d > %s/notes", i, files))
		s.mustRun("snapshot")
	}
	names := snapshotList(t, s)
	if len(names) != 3 {
		t.Fatalf("snapshot ls after 3 snapshots: %v", names)
	}

	r := s.run("forget")
	if want := "stofuse: forget needs a rule: --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly " +
		"or --keep-yearly with N > 0 (with none it would forget every snapshot)\n"; r.code != 2 || r.stderr != want {
		t.Errorf("forget without a rule: exit %d, %q; want exit 2, %q", r.code, r.stderr, want)
	}
	if r := s.run("forget", "--keep-daily", "-1"); r.code != 2 || r.stderr != "stofuse: --keep-daily -1: N must be 0 or more\n" {
		t.Errorf("forget --keep-daily -1: exit %d, %q", r.code, r.stderr)
	}
	if r := s.run("forget", "--keep-last", "1", "nosuch"); r.code != 2 || r.stderr != "stofuse: no collection \"nosuch\"\n" {
		t.Errorf("forget of an unknown collection: exit %d, %q", r.code, r.stderr)
	}

	dry := s.mustRun("forget", "--keep-last", "2", "--dry-run", "default")
	want := fmt.Sprintf("default      %s  would forget\n"+
		"default      %s  keep (last)\n"+
		"default      %s  keep (last)\n"+
		"default: 2 kept, 1 would be forgotten (dry run: nothing was changed) (keep last 2)\n", names[0], names[1], names[2])
	if dry != want {
		t.Errorf("forget --dry-run said:\n%s\nwant:\n%s", dry, want)
	}
	listing := func() string { return sh(t, "ls "+filepath.Join(m.dir, "snapshots", "default")) }
	if got := listing(); got != strings.Join(names, "\n")+"\n" {
		t.Errorf("snapshots/default after a dry run:\n%s", got)
	}

	out := s.mustRun("forget", "--keep-last", "2")
	want = fmt.Sprintf("default      %s  forget\n"+
		"default      %s  keep (last)\n"+
		"default      %s  keep (last)\n"+
		"default: 2 kept, 1 forgotten (keep last 2)\n", names[0], names[1], names[2])
	if out != want {
		t.Errorf("forget through the mount said:\n%s\nwant:\n%s", out, want)
	}
	if got := listing(); got != strings.Join(names[1:], "\n")+"\n" {
		t.Errorf("snapshots/default right after forget:\n%s\nwant %v", got, names[1:])
	}
	if got := sh(t, "cat "+filepath.Join(m.dir, "snapshots", "default", names[2], "notes")); got != "version 2\n" {
		t.Errorf("a kept snapshot's file reads %q", got)
	}
	m.unmount()

	// Without a mount: the newest is kept by every rule.
	out = s.mustRun("forget", "--keep-monthly", "1")
	want = fmt.Sprintf("default      %s  forget\n"+
		"default      %s  keep (monthly)\n"+
		"default: 1 kept, 1 forgotten (keep monthly 1)\n", names[1], names[2])
	if out != want {
		t.Errorf("forget without a mount said:\n%s\nwant:\n%s", out, want)
	}
	if got := snapshotList(t, s); strings.Join(got, " ") != names[2] {
		t.Errorf("snapshot ls after forget: %v, want only %s", got, names[2])
	}

	if err := os.RemoveAll(filepath.Join(s.dir, "meta")); err != nil {
		t.Fatal(err)
	}
	s.mustRun("recover", "--from", filepath.Join(s.dir, "volumes", "default"))
	if got := snapshotList(t, s); strings.Join(got, " ") != names[2] {
		t.Errorf("snapshot ls after recover: %v, want only %s", got, names[2])
	}
	m = s.mount("--read-only")
	if got := sh(t, "cat "+filepath.Join(m.dir, "files", "default", "notes")); got != "version 2\n" {
		t.Errorf("files/default/notes after recover: %q", got)
	}
}
