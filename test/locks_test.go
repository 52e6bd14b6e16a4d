package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lockerEnv makes the test binary a process that takes a POSIX lock
// (fcntl F_SETLK, or F_SETLKW when it is "wait:PATH"; a write lock on the
// whole file) on PATH and prints what happened: another process to lock
// against.
const lockerEnv = "STOFUSE_TEST_LOCKER"

func locker(arg string) int {
	path, wait := strings.CutPrefix(arg, "wait:")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer f.Close()
	lock := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0}
	probe := lock
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &probe); err != nil {
		fmt.Println("F_GETLK:", err)
		return 1
	}
	held := "free"
	if probe.Type != syscall.F_UNLCK {
		held = fmt.Sprintf("held by %d", probe.Pid)
	}
	cmd := syscall.F_SETLK
	if wait {
		cmd = syscall.F_SETLKW
	}
	if err := syscall.FcntlFlock(f.Fd(), cmd, &lock); err != nil {
		fmt.Printf("%s, F_SETLK: %v\n", held, err)
		return 0
	}
	fmt.Printf("%s, locked\n", held)
	return 0
}

func runLocker(t *testing.T, arg string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), lockerEnv+"="+arg)
	return cmd
}

// TestLocks: flock(2) and POSIX (fcntl) locks hold between processes on
// one mount, in files/ and ref/, also through another hard link of the
// same file: the kernel keeps them (the mount does not forward locks, so
// the kernel locks locally, as for any filesystem on this machine; one
// store is mounted by one daemon, so no other machine or mount shares the
// files). A lock waited for is granted once released, and a lock goes
// with the process.
func TestLocks(t *testing.T) {
	requireFuse(t)
	s := newStore(t)
	m := s.mount()
	files := filepath.Join(m.dir, "files", "default")
	sh(t, "echo data > "+files+"/f && ln "+files+"/f "+files+"/g")
	blob := writeHashNamed(t, filepath.Join(m.dir, "ref"), 1, 7)[0]

	for _, path := range []string{files + "/f", m.ref(blob)} {
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			t.Fatalf("flock of %s: %v", path, err)
		}
		if out := sh(t, "flock -n "+path+" true; echo exit $?"); out != "exit 1\n" {
			t.Errorf("flock -n of %s while another process holds it: %q, want exit 1", path, out)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_UN); err != nil {
			t.Fatal(err)
		}
		if out := sh(t, "flock -n "+path+" true; echo exit $?"); out != "exit 0\n" {
			t.Errorf("flock -n of %s once released: %q, want exit 0", path, out)
		}
		f.Close()
	}
	// Through the other name of a linked file.
	held := exec.Command("flock", files+"/f", "sleep", "300")
	held.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // flock and its sleep, which inherits the lock
	if err := held.Start(); err != nil {
		t.Fatal(err)
	}
	kill := func() { syscall.Kill(-held.Process.Pid, syscall.SIGKILL); held.Wait() }
	t.Cleanup(kill)
	waitFor(t, "flock to take the lock", func() bool {
		return exec.Command("flock", "-n", files+"/f", "true").Run() != nil
	})
	if out := sh(t, "flock -n "+files+"/g true; echo exit $?"); out != "exit 1\n" {
		t.Errorf("flock -n of another name of a locked file: %q, want exit 1", out)
	}
	kill() // the lock goes with the processes holding it
	if out := sh(t, "flock -n "+files+"/g true; echo exit $?"); out != "exit 0\n" {
		t.Errorf("flock -n after the holder died: %q, want exit 0", out)
	}

	// POSIX locks: this process holds one, another tests and tries it.
	f, err := os.OpenFile(files+"/f", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lock := syscall.Flock_t{Type: syscall.F_WRLCK}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lock); err != nil {
		t.Fatalf("F_SETLK in files/: %v", err)
	}
	for _, path := range []string{files + "/f", files + "/g"} {
		out, err := runLocker(t, path).CombinedOutput()
		if want := fmt.Sprintf("held by %d, F_SETLK: resource temporarily unavailable\n", os.Getpid()); err != nil || string(out) != want {
			t.Errorf("another process locking %s: %q (%v), want %q", path, out, err, want)
		}
	}
	waiter := runLocker(t, "wait:"+files+"/g")
	var waited strings.Builder
	waiter.Stdout = &waited
	if err := waiter.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let it block; the result does not depend on it
	lock.Type = syscall.F_UNLCK
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lock); err != nil {
		t.Fatal(err)
	}
	if err := waiter.Wait(); err != nil || !strings.HasSuffix(waited.String(), ", locked\n") {
		t.Errorf("F_SETLKW of another process once the lock was released: %q, %v", waited.String(), err)
	}
	if out, err := runLocker(t, files+"/f").CombinedOutput(); err != nil || string(out) != "free, locked\n" {
		t.Errorf("a lock after its holder exited: %q, %v", out, err)
	}
}
