package test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// daemonExitWait bounds how long a test waits for a mount daemon to exit
// after its unmount: it must exit by itself, in a bounded time (the
// daemon bounds its own wait for the store's close to a few seconds).
const daemonExitWait = 2 * time.Minute

// mountFilesystem mounts a small tmpfs at dir; the test's cleanup
// unmounts whatever is still mounted there (the test may move it).
func mountFilesystem(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256m"); err != nil {
		t.Fatalf("mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		// A daemon that has exited may still be letting go of its memory
		// maps of files here (EBUSY) for a moment.
		deadline := time.Now().Add(10 * time.Second)
		for isMounted(dir) {
			err := unix.Unmount(dir, 0)
			if errors.Is(err, unix.EBUSY) && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if err != nil {
				t.Errorf("unmounting %s: %v", dir, err)
				unix.Unmount(dir, unix.MNT_DETACH)
			}
		}
	})
}

// TestStoreVanishesWhileMounted: the store's directory goes away under a
// mount (removed; or its filesystem lazily unmounted, as when a disk is
// pulled), after a file was written and committed and a blob put. Reads
// and writes through the mount fail with EIO, the daemon's log says why,
// the mount unmounts, and the daemon exits by itself, saying so. After a
// lazy unmount, what was committed is all there once the filesystem is
// back.
func TestStoreVanishesWhileMounted(t *testing.T) {
	requireRoot(t)
	for _, how := range []string{"removed", "lazily unmounted"} {
		t.Run(how, func(t *testing.T) {
			top := t.TempDir()
			disk, keep := filepath.Join(top, "disk"), filepath.Join(top, "keep")
			mountFilesystem(t, disk)
			// A second view of the same filesystem, where it stays reachable
			// after the lazy unmount of disk.
			os.Mkdir(keep, 0o755)
			if err := unix.Mount(disk, keep, "", unix.MS_BIND, ""); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Unmount(keep, unix.MNT_DETACH) })

			dir := filepath.Join(disk, "store")
			s := &store{t: t, dir: dir, env: append(os.Environ(), "STOFUSE_STORE="+dir, "STOFUSE_KEY_FILE=", "STOFUSE_PASSPHRASE=")}
			s.mustRun("init")
			m := s.mount()
			log := daemonLog(t, m.pid)
			file := filepath.Join(m.dir, "files", "default", "committed")
			fileSum := writeRandomFile(t, file, 21, 400_000)
			src := filepath.Join(t.TempDir(), "blob")
			blob := writeRandomFile(t, src, 22, 300_000)
			s.mustRun("put", src)
			s.mustRun("sync")

			if how == "removed" {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
			} else if err := unix.Unmount(disk, unix.MNT_DETACH); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the daemon to notice that its store is gone", func() bool {
				return strings.Contains(readAll(t, log), "is gone")
			})
			sh(t, "echo 3 > /proc/sys/vm/drop_caches") // what follows reaches the daemon
			if _, err := os.ReadFile(m.ref(blob)); !errors.Is(err, syscall.EIO) {
				t.Errorf("a read of ref/%s with the store gone: %v, want EIO", blob, err)
			}
			if err := os.WriteFile(filepath.Join(m.dir, "files", "default", "new"), []byte("new\n"), 0o644); !errors.Is(err, syscall.EIO) {
				t.Errorf("a write into files/ with the store gone: %v, want EIO", err)
			}

			m.unmount()
			deadline := time.Now().Add(daemonExitWait)
			for !processGone(m.pid) {
				if time.Now().After(deadline) {
					t.Fatalf("the daemon (pid %d) has not exited %s after its unmount; its log:\n%s", m.pid, daemonExitWait, readAll(t, log))
				}
				time.Sleep(50 * time.Millisecond)
			}
			text := readAll(t, log)
			for _, want := range []string{
				"store " + dir + " is gone",
				"answered with input/output error",
				"went away while " + m.dir + " was mounted",
			} {
				if !strings.Contains(text, want) {
					t.Errorf("the daemon's log does not say %q:\n%s", want, text)
				}
			}
			if how == "removed" {
				return
			}

			// The filesystem back where it was: what was committed is there.
			if err := unix.Mount(keep, disk, "", unix.MS_BIND, ""); err != nil {
				t.Fatal(err)
			}
			// A zombie's other threads may hold its files a moment longer.
			waitFor(t, "the exited daemon to let go of the store's lock", func() bool { return unlocked(filepath.Join(dir, "meta")) })
			if got := sha256Hex([]byte(s.mustRun("cat", blob))); got != blob {
				t.Errorf("the blob put before the store went away reads as %s", got)
			}
			if r := s.run("scrub"); r.code != 0 {
				t.Errorf("scrub after the store came back: exit %d: %s%s", r.code, r.stdout, r.stderr)
			}
			m = s.mount()
			if got := sha256File(t, filepath.Join(m.dir, "files", "default", "committed")); got != fileSum {
				t.Errorf("files/default/committed after the store came back: SHA-256 %s, want %s", got, fileSum)
			}
			m.unmount()
		})
	}
}

// unlocked reports whether no process holds the lock of the metadata
// directory dir.
func unlocked(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return false
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return true
}

// daemonLog opens the daemon's log (its stderr) through /proc, so that it
// can be read after the file's directory is gone, and after the daemon.
func daemonLog(t *testing.T, pid int) *os.File {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/fd/2", pid))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readAll(t *testing.T, f *os.File) string {
	t.Helper()
	body, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<30))
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
