package test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDaemonRunsCommands: while the store is mounted, put, cat, stat,
// scrub, replicate and volume commands run through the mount daemon, with
// the same output and exit codes as without a mount.
func TestDaemonRunsCommands(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	ref := writeRandomFile(t, filepath.Join(dir, "a"), 21, 3<<20)
	s.mustRun("put", filepath.Join(dir, "a"))
	statBefore := s.mustRun("stat", ref)
	volumesBefore := s.mustRun("volume", "ls")

	m := s.mount()
	if _, err := os.Stat(filepath.Join(s.dir, "control.sock")); err != nil {
		t.Fatalf("no control socket while mounted: %v", err)
	}
	if got := s.mustRun("stat", ref); got != statBefore {
		t.Fatalf("stat through the daemon:\n%s\nwithout a mount:\n%s", got, statBefore)
	}
	if got := s.mustRun("volume", "ls"); got != volumesBefore {
		t.Fatalf("volume ls through the daemon:\n%s\nwithout a mount:\n%s", got, volumesBefore)
	}
	// A put through the daemon shows in the mount at once.
	newRef := writeRandomFile(t, filepath.Join(dir, "b"), 22, 1<<20)
	if out := s.mustRun("put", filepath.Join(dir, "b")); out != newRef+"  "+filepath.Join(dir, "b")+"\n" {
		t.Fatalf("put through the daemon printed %q", out)
	}
	sh(t, "cmp "+filepath.Join(dir, "b")+" "+m.ref(newRef))
	// A relative path is the client's, not the daemon's.
	cmd := exec.Command(stofuseBin, "put", "a")
	cmd.Dir, cmd.Env = dir, s.env
	if out, err := cmd.Output(); err != nil || !strings.HasPrefix(string(out), ref+"  a") {
		t.Fatalf("put of a relative path through the daemon: %q, %v", out, err)
	}
	if got := s.mustRun("cat", ref); got != string(must(os.ReadFile(filepath.Join(dir, "a")))) {
		t.Fatal("cat through the daemon gave other bytes")
	}

	s.mustRun("volume", "add", "backup", "--path", filepath.Join(dir, "backup"))
	if out := s.mustRun("replicate", "--from", "default", "--to", "backup"); !strings.Contains(out, "replicated 2 blobs") {
		t.Fatalf("replicate through the daemon: %s", out)
	}
	s.mustRun("scrub", "--volume", "backup")

	// Damage found by a scrub through the daemon: exit 1, the ref named.
	stored := filepath.Join(s.dir, "volumes", "default", ref[:3], ref)
	f, _ := os.OpenFile(stored, os.O_RDWR, 0)
	f.WriteAt([]byte{0x55}, 200_000)
	f.Close()
	r := s.run("scrub", "--volume", "default")
	if r.code != 1 || !strings.Contains(r.stdout, "DAMAGED  "+ref+"  volume default: frame 1") {
		t.Fatalf("scrub of a damaged blob through the daemon: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A wrong key is still refused (exit 2) through the daemon.
	wrong := filepath.Join(dir, "wrong.key")
	s.mustRun("key", "generate", wrong)
	if r := s.run("--key-file", wrong, "cat", newRef); r.code != 2 || !strings.Contains(r.stderr, "wrong key") {
		t.Fatalf("a wrong key through the daemon: exit %d, %q", r.code, r.stderr)
	}
	// One mount per store.
	other := filepath.Join(t.TempDir(), "other")
	os.Mkdir(other, 0o755)
	if r := s.run("mount", "--background", other); r.code != 2 || !strings.Contains(r.stderr, "is mounted already") {
		t.Fatalf("a second mount of the store: exit %d, %q", r.code, r.stderr)
	}
}

// TestDaemonTwoClients: two clients at once both get correct answers.
func TestDaemonTwoClients(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	refs := []string{writeRandomFile(t, filepath.Join(dir, "0"), 31, 8<<20), writeRandomFile(t, filepath.Join(dir, "1"), 32, 8<<20)}
	s.mustRun("put", filepath.Join(dir, "0"), filepath.Join(dir, "1"))
	s.mount()
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for round := range 3 {
		for i, ref := range refs {
			wg.Go(func() {
				cmd := exec.Command(stofuseBin, "cat", ref)
				cmd.Env = s.env
				got, err := cmd.Output()
				want, _ := os.ReadFile(filepath.Join(dir, string(rune('0'+i))))
				if err != nil || !bytes.Equal(got, want) {
					errs <- "cat " + ref + ": " + err.Error()
				}
			})
		}
		wg.Go(func() {
			cmd := exec.Command(stofuseBin, "scrub")
			cmd.Env = s.env
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- "scrub in round " + string(rune('0'+round)) + ": " + string(out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestDaemonOwnerOnly: the control socket is the owner's (mode 0600), and
// a connection from another user is refused by its peer credentials even
// when the socket's mode would let it in.
func TestDaemonOwnerOnly(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to act as another user")
	}
	s := newStore(t)
	s.mount()
	socket := filepath.Join(s.dir, "control.sock")
	info, err := os.Stat(socket)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v, mode %v; want 0600", err, info.Mode())
	}
	// Let user nobody reach the socket and the binary, and run as nobody.
	for dir := s.dir; dir != "/" && dir != os.TempDir(); dir = filepath.Dir(dir) {
		os.Chmod(dir, 0o755)
	}
	os.Chmod(filepath.Dir(stofuseBin), 0o755)
	asNobody := func() result {
		cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", stofuseBin, "volume", "ls")
		cmd.Env = s.env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if exit, ok := err.(*exec.ExitError); ok {
			code = exit.ExitCode()
		}
		return result{stdout.String(), stderr.String(), code}
	}
	r := asNobody()
	if r.code == 0 || !strings.Contains(r.stderr, "mounted by another user's daemon") || strings.Contains(r.stdout, "default") {
		t.Fatalf("another user, socket mode 0600: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	os.Chmod(socket, 0o666)
	r = asNobody()
	if r.code != 2 || !strings.Contains(r.stderr, "runs commands only for its owner (uid 0), not for uid 65534") || strings.Contains(r.stdout, "default") {
		t.Fatalf("another user, socket mode 0666: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestScrubResume: a scrub interrupted with Ctrl-C resumes where it stopped;
// scrub --status and status report it; status lists a running scrub.
func TestScrubResume(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	var paths []string
	for i := range 8 {
		path := filepath.Join(dir, string(rune('a'+i)))
		writeRandomFile(t, path, uint64(40+i), 2<<20)
		paths = append(paths, path)
	}
	s.mustRun(append([]string{"put"}, paths...)...)
	s.mount()

	scrub := exec.Command(stofuseBin, "scrub", "--limit-rate", "4M")
	scrub.Env = s.env
	var out bytes.Buffer
	scrub.Stdout, scrub.Stderr = &out, &out
	if err := scrub.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if status := s.mustRun("status"); !strings.Contains(status, "stofuse scrub --limit-rate 4M") || !strings.Contains(status, "mounted:  every volume (writes go to default) at") {
		t.Fatalf("status while a scrub runs:\n%s", status)
	}
	scrub.Process.Signal(syscall.SIGINT)
	err := scrub.Wait()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 130 {
		t.Fatalf("the interrupted scrub: %v\n%s", err, out.String())
	}
	if status := s.mustRun("scrub", "--status"); !strings.Contains(status, "interrupted") || !strings.Contains(status, "stofuse scrub --resume") {
		t.Fatalf("scrub --status after the interruption:\n%s", status)
	}
	r := s.run("scrub", "--resume")
	if r.code != 0 || !strings.Contains(r.stderr, "resuming the scrub of volume default after") || !strings.Contains(r.stdout, "8 blobs") {
		t.Fatalf("scrub --resume: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if status := s.mustRun("status"); !strings.Contains(status, "default: last scrub") || !strings.Contains(status, "8 blobs, 16.0 MiB; 0 damaged") {
		t.Fatalf("status after the resumed scrub:\n%s", status)
	}
}

// TestDaemonUsesTheClientsKey: a daemon mounted with STOFUSE_KEY_FILE in
// its environment still checks the key each client gives, and a client
// that gives none can run keyless commands.
func TestDaemonUsesTheClientsKey(t *testing.T) {
	s := newStore(t)
	keys := t.TempDir()
	key := filepath.Join(keys, "store.key")
	if err := os.Rename(filepath.Join(s.dir, "key"), key); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, []byte("key check\n"), 0o644)
	ref := sha256Hex([]byte("key check\n"))
	withKey := append(append([]string{}, s.env...), "STOFUSE_KEY_FILE="+key)
	s.env = withKey
	s.mustRun("put", src)
	s.mount()

	wrong := filepath.Join(keys, "wrong.key")
	s.mustRun("key", "generate", wrong)
	s.env = append(append([]string{}, withKey...), "STOFUSE_KEY_FILE="+wrong)
	if r := s.run("cat", ref); r.code != 2 || !strings.Contains(r.stderr, "wrong key") {
		t.Fatalf("a wrong STOFUSE_KEY_FILE through a daemon mounted with the right one: exit %d, %q", r.code, r.stderr)
	}
	s.env = append(append([]string{}, withKey...), "STOFUSE_KEY_FILE=")
	if r := s.run("stat", ref); r.code != 0 {
		t.Fatalf("a keyless command with no key given: exit %d, %q", r.code, r.stderr)
	}
	s.env = withKey
}

// TestDaemonInterruptAndUnmount: Ctrl-C reaches a command waiting for its
// standard input, and an unmount does not wait for a client that sends
// nothing.
func TestDaemonInterruptAndUnmount(t *testing.T) {
	s := newStore(t)
	m := s.mount()
	startPut := func() (*exec.Cmd, *os.File) {
		reader, writer, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(stofuseBin, "put", "-")
		cmd.Env, cmd.Stdin = s.env, reader
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		reader.Close()
		writer.Write([]byte("a start, and then nothing"))
		time.Sleep(500 * time.Millisecond)
		return cmd, writer
	}
	put, writer := startPut()
	defer writer.Close()
	put.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- put.Wait() }()
	select {
	case err := <-done:
		if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 130 {
			t.Fatalf("put - interrupted: %v, want exit 130", err)
		}
	case <-time.After(10 * time.Second):
		put.Process.Kill()
		t.Fatal("Ctrl-C did not reach a command waiting for its standard input")
	}

	stuck, stuckWriter := startPut()
	defer stuckWriter.Close()
	defer stuck.Process.Kill()
	start := time.Now()
	m.unmount() // fails the test if the daemon keeps the store
	if took := time.Since(start); took > 8*time.Second {
		t.Fatalf("unmount took %v with a client that sends nothing", took)
	}
}
