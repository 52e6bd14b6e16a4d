package test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestMountFailureSaysWhy checks what the user sees on the terminal when
// a mount fails, in the foreground and with --background: one line that
// says why (the kernel's or fusermount3's reason, not only "fusermount
// exited with code 256" with the reason in mount.log), and the exit code
// README gives.
func TestMountFailureSaysWhy(t *testing.T) {
	requireFuse(t)
	s := newStore(t)
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []mountFailure{
		{"missing mountpoint", filepath.Join(dir, "missing"), nil,
			fmt.Sprintf("stofuse: mountpoint %s does not exist: create it first\n", filepath.Join(dir, "missing")), 2},
		{"not a directory", notADir, nil,
			fmt.Sprintf("stofuse: mountpoint %s is not a directory\n", notADir), 2},
	}
	if setpriv, err := exec.LookPath("setpriv"); err == nil && os.Geteuid() == 0 {
		// Root in a container started without CAP_SYS_ADMIN.
		cases = append(cases, mountFailure{"root without CAP_SYS_ADMIN", mnt, []string{setpriv, "--bounding-set=-sys_admin", "--inh-caps=-sys_admin"},
			fmt.Sprintf("stofuse: mounting %s: operation not permitted: mount(2) needs CAP_SYS_ADMIN, which this process "+
				"does not have (a container must be given it, and /dev/fuse)\n", mnt), 1})
	}
	for _, tc := range cases {
		for _, background := range []bool{false, true} {
			args := []string{"mount", tc.mountpoint}
			if background {
				args = []string{"mount", "--background", tc.mountpoint}
			}
			t.Run(fmt.Sprintf("%s/background=%v", tc.name, background), func(t *testing.T) {
				cmd := exec.Command(stofuseBin, args...)
				if tc.prefix != nil {
					cmd = exec.Command(tc.prefix[0], append(append(tc.prefix[1:], stofuseBin), args...)...)
				}
				cmd.Env = s.env
				checkMountFails(t, cmd, tc.mountpoint, tc.want, tc.code)
			})
		}
	}
}

// mountFailure is a mount that must fail, with the one line it must print.
type mountFailure struct {
	name       string
	mountpoint string
	prefix     []string // run the binary through this command
	want       string
	code       int
}

// TestMountFailureSaysWhyAsUser checks the line a user other than root
// sees when fusermount3 refuses the mount: fusermount3's own reason. The
// mountpoint is root's, so fusermount3 refuses it ("user has no write
// access"); where /dev/fuse is root's alone (as in some containers), it
// fails before that, at opening /dev/fuse.
func TestMountFailureSaysWhyAsUser(t *testing.T) {
	requireFuse(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run stofuse as another user")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Skip("no fusermount3")
	}
	const uid, gid = 65534, 65534 // nobody
	// A directory the user can reach: t.TempDir's parents are root's alone.
	dir, err := os.MkdirTemp("", "stofuse-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	home := filepath.Join(dir, "home")
	mnt := filepath.Join(dir, "mnt") // root's: the user may not mount on it
	bin := filepath.Join(dir, "stofuse")
	for _, d := range []string{home, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, uid, gid); err != nil {
		t.Fatal(err)
	}
	sh(t, fmt.Sprintf("cp %s %s && chmod 755 %s", stofuseBin, bin, bin))
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "STOFUSE_STORE=" + filepath.Join(home, "store"),
		"STOFUSE_KEY_FILE=", "STOFUSE_PASSPHRASE="}
	asUser := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
		return cmd
	}
	if out, err := asUser("init").CombinedOutput(); err != nil {
		t.Fatalf("stofuse init as uid %d: %v\n%s", uid, err, out)
	}
	reason := fmt.Sprintf("user has no write access to mountpoint %s", mnt)
	if info, err := os.Stat("/dev/fuse"); err == nil && info.Mode().Perm()&0o006 != 0o006 {
		reason = "failed to open /dev/fuse: Permission denied"
	}
	want := fmt.Sprintf("stofuse: mounting %s: fusermount3: %s\n", mnt, reason)
	t.Run("foreground", func(t *testing.T) { checkMountFails(t, asUser("mount", mnt), mnt, want, 1) })
	t.Run("background", func(t *testing.T) { checkMountFails(t, asUser("mount", "--background", mnt), mnt, want, 1) })
}

// checkMountFails runs a mount command that must fail, and checks its
// whole stderr and exit code, and that nothing was mounted. A foreground
// mount that mounted after all would run on: it is stopped.
func checkMountFails(t *testing.T, cmd *exec.Cmd, mountpoint, wantStderr string, wantCode int) {
	t.Helper()
	t.Cleanup(func() {
		if isMounted(mountpoint) {
			syscall.Unmount(mountpoint, syscall.MNT_DETACH)
		}
	})
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	select {
	case <-done:
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v still running after a minute (mounted: %v); stderr:\n%s", cmd.Args, isMounted(mountpoint), stderr.String())
	}
	if got := cmd.ProcessState.ExitCode(); got != wantCode || stderr.String() != wantStderr || stdout.Len() != 0 {
		t.Errorf("%v: exit %d, stderr %q, stdout %q;\nwant exit %d, stderr %q", cmd.Args, got, stderr.String(), stdout.String(), wantCode, wantStderr)
	}
	if isMounted(mountpoint) {
		t.Errorf("%s is mounted after a failed mount", mountpoint)
	}
}
