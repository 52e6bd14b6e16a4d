package badger

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// allocated is what the file at path takes on its filesystem.
func allocated(t *testing.T, path string) (size, blocks int64) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size(), info.Sys().(*syscall.Stat_t).Blocks * 512
}

// TestMemtableLogsAllocated: the memtable log in use has no hole, the next
// one is made ahead (empty, its blocks allocated), the reserve is whole;
// Close removes the one made ahead, and an open after a process that died
// with one left (or a read-only open) does not trip on it.
func TestMemtableLogsAllocated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "meta")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetState(context.Background(), "x", 1); err != nil {
		t.Fatal(err)
	}
	current, _, err := newestMemtableLog(dir)
	if err != nil || current < 0 {
		t.Fatalf("no memtable log in use: %d, %v", current, err)
	}
	if size, blocks := allocated(t, memtableLogPath(dir, current)); size != memtableLogSize || blocks < size {
		t.Errorf("the memtable log in use: size %d, %d bytes allocated", size, blocks)
	}
	next := memtableLogPath(dir, current+1)
	if size, blocks := allocated(t, next); size != 0 || blocks < memtableLogSize {
		t.Errorf("the memtable log made ahead: size %d, %d bytes allocated", size, blocks)
	}
	if size, blocks := allocated(t, dir+".reserve"); size != reserveSize || blocks < size {
		t.Errorf("the reserve: size %d, %d bytes allocated", size, blocks)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(next); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the memtable log made ahead is still there after Close: %v", err)
	}

	// As a process that died would leave it.
	if err := os.WriteFile(next, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(dir, t.TempDir())
	if err != nil {
		t.Fatalf("read-only open with an empty memtable log: %v", err)
	}
	var x int
	if err := ro.State(context.Background(), "x", &x); err != nil || x != 1 {
		t.Errorf("read-only: state %d, %v", x, err)
	}
	ro.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatalf("open with an empty memtable log: %v", err)
	}
	if err := s.State(context.Background(), "x", &x); err != nil || x != 1 {
		t.Errorf("state %d, %v", x, err)
	}
	s.Close()
}

// TestNoSpaceErrorIsENOSPC: the guard's refusal is ENOSPC to errors.Is,
// and so to the mount's errno mapping.
func TestNoSpaceErrorIsENOSPC(t *testing.T) {
	err := error(&NoSpaceError{Dir: "/store/meta", Free: 3 << 20, Why: "it keeps 64.0 MiB free"})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("%v is not ENOSPC", err)
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) || errno != syscall.ENOSPC {
		t.Errorf("errors.As to an Errno: %v", errno)
	}
}
