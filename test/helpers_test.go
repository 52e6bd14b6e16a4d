package test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireFuse skips a test that needs FUSE when there is none, except in
// CI, where that is a failure.
func requireFuse(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no /dev/fuse: FUSE tests must run in CI (%v)", err)
		}
		t.Skipf("no /dev/fuse: %v", err)
	}
}

// store is a stofuse store in a temporary directory, driven through the
// built binary.
type store struct {
	t   *testing.T
	dir string
	env []string
}

func newStore(t *testing.T) *store {
	t.Helper()
	return newStoreAt(t, filepath.Join(t.TempDir(), "store"))
}

// newStoreAt makes a store in dir.
func newStoreAt(t *testing.T, dir string) *store {
	t.Helper()
	s := &store{t: t, dir: dir, env: append(os.Environ(), "STOFUSE_STORE="+dir, "STOFUSE_KEY_FILE=", "STOFUSE_PASSPHRASE=")}
	s.mustRun("init")
	return s
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs the binary with args and returns what it printed and its exit
// code.
func (s *store) run(args ...string) result {
	s.t.Helper()
	cmd := exec.Command(stofuseBin, args...)
	cmd.Env = s.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		s.t.Fatalf("stofuse %v: %v", args, err)
	}
	return result{stdout.String(), stderr.String(), code}
}

func (s *store) mustRun(args ...string) string {
	s.t.Helper()
	r := s.run(args...)
	if r.code != 0 {
		s.t.Fatalf("stofuse %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// mount is a running stofuse mount.
type mount struct {
	s   *store
	dir string
	pid int
}

var pidPattern = regexp.MustCompile(`\(pid (\d+);`)

// mount mounts the store in the background at a new directory; the mount
// is unmounted when the test ends, whether it passed or not.
func (s *store) mount(args ...string) *mount {
	s.t.Helper()
	requireFuse(s.t)
	dir := filepath.Join(s.t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	return s.mountAt(dir, args...)
}

func (s *store) mountAt(dir string, args ...string) *mount {
	s.t.Helper()
	r := s.run(append(append([]string{"mount", "--background"}, args...), dir)...)
	if r.code != 0 {
		s.t.Fatalf("stofuse mount: exit %d: %s", r.code, r.stderr)
	}
	m := &mount{s: s, dir: dir}
	s.t.Cleanup(m.cleanup)
	if match := pidPattern.FindStringSubmatch(r.stderr); match != nil {
		m.pid, _ = strconv.Atoi(match[1])
	}
	if m.pid <= 0 {
		s.t.Fatalf("stofuse mount did not say its pid: %q", r.stderr)
	}
	return m
}

// cleanup unmounts if still mounted; a mount that will not go is detached,
// and the test fails: a stuck mount is a bug.
func (m *mount) cleanup() {
	if !isMounted(m.dir) {
		return
	}
	if r := m.s.run("unmount", m.dir); r.code != 0 {
		m.s.t.Errorf("cleanup: stofuse unmount %s: %s", m.dir, r.stderr)
		syscall.Unmount(m.dir, syscall.MNT_DETACH)
	}
}

// unmount unmounts and waits until the daemon has let go of the store.
func (m *mount) unmount() {
	m.s.t.Helper()
	m.s.mustRun("unmount", m.dir)
	if isMounted(m.dir) {
		m.s.t.Fatalf("%s still mounted after stofuse unmount", m.dir)
	}
}

// recoverAndMount unmounts m, throws the metadata directory away, brings
// it back with stofuse recover from the default volume and mounts again.
func (s *store) recoverAndMount(m *mount) *mount {
	s.t.Helper()
	m.unmount()
	if err := os.RemoveAll(filepath.Join(s.dir, "meta")); err != nil {
		s.t.Fatal(err)
	}
	s.mustRun("recover", "--from", filepath.Join(s.dir, "volumes", "default"))
	return s.mount()
}

// kill kills the mount's daemon with SIGKILL, as a crash would, waits
// for it to exit and detaches the dead mount.
func (m *mount) kill(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(m.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the killed daemon to exit", func() bool { return processGone(m.pid) })
	exec.Command("umount", "-l", m.dir).Run()
}

func (m *mount) ref(name string) string { return filepath.Join(m.dir, "ref", name) }

func isMounted(dir string) bool {
	body, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(body), "\n") {
		if fields := strings.Fields(line); len(fields) > 4 && fields[4] == dir {
			return true
		}
	}
	return false
}

// peakRSS is the daemon's peak resident memory (VmHWM), in bytes.
func (m *mount) peakRSS() int64 {
	m.s.t.Helper()
	body, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.pid))
	if err != nil {
		m.s.t.Fatalf("reading the daemon's memory: %v", err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	m.s.t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// sh runs a shell command line and returns its output; it fails the test
// if the command fails.
func sh(t *testing.T, cmdline string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", cmdline).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, out)
	}
	return string(out)
}

// shFails runs a shell command that must fail, and returns its output.
func shFails(t *testing.T, cmdline string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", cmdline).CombinedOutput()
	if err == nil {
		t.Fatalf("%s succeeded, want it to fail\n%s", cmdline, out)
	}
	return string(out)
}

// writeRandomFile writes size pseudo-random bytes from seed and returns the
// SHA-256 hex of them.
func writeRandomFile(t *testing.T, path string, seed uint64, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	rng := rand.New(rand.NewPCG(seed, 7))
	buf := make([]byte, 1<<20)
	for written := int64(0); written < size; {
		for i := 0; i < len(buf); i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		chunk := buf[:min(int64(len(buf)), size-written)]
		if _, err := io.MultiWriter(f, h).Write(chunk); err != nil {
			t.Fatal(err)
		}
		written += int64(len(chunk))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// writeFiles writes files named by their content's hash into dir and
// returns the names.
func writeHashNamed(t *testing.T, dir string, count int, seed uint64) []string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 9))
	var names []string
	for i := range count {
		content := make([]byte, rng.IntN(300_000))
		for j := range content {
			content[j] = byte(rng.Uint32() >> 24 % 16) // compressible
		}
		content = append(content, byte(i))
		name := sha256Hex(content)
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	return names
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processGone reports whether process pid has exited (a zombie not yet
// reaped counts: it holds no file, and so no lock, any more).
func processGone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...: comm may hold spaces, so look after the last ')'.
	rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
	return strings.HasPrefix(strings.TrimSpace(rest), "Z")
}
