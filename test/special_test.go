package test

import (
	"io"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// specialListing lists a tree as stat sees it: name, type, mode, owner and
// group, and device numbers (major:minor, hex).
func specialListing(t *testing.T, dir string) string {
	t.Helper()
	return sh(t, "cd "+dir+" && find . -mindepth 1 -print0 | sort -z | xargs -0 stat -c '%n %F %a %u:%g %t:%T'")
}

// bindSocket leaves a Unix socket at path, as a server that has exited
// does.
func bindSocket(t *testing.T, path string) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatalf("binding a socket at %s: %v", path, err)
	}
}

// TestSpecialFiles: FIFOs, sockets and character and block devices are
// made in files/ (mkfifo, mknod, bind) and kept as metadata, with their
// type, mode, owner and device numbers: tar and rsync -a copy a tree of
// them in and out unchanged, a FIFO passes data between two processes and
// a socket made in the mount takes connections, only root makes devices
// (which the mount, nodev like every FUSE mount, does not open); mknod(2)
// of a regular file makes an empty one. They survive a kill -9 of the
// daemon, are in snapshots (snapshots/ shows
// them) and come back with stofuse recover.
func TestSpecialFiles(t *testing.T) {
	requireRoot(t)
	src := filepath.Join(t.TempDir(), "src")
	sh(t, "mkdir "+src+" && mkfifo -m 640 "+src+"/fifo && mknod -m 666 "+src+"/null c 1 3 && mknod "+src+"/loop b 7 0"+
		" && chown 1234:4321 "+src+"/loop && mkdir "+src+"/dir && mknod "+src+"/dir/big c 259 65537")
	bindSocket(t, filepath.Join(src, "sock"))
	want := specialListing(t, src)
	for _, line := range []string{"./fifo fifo 640 0:0 0:0", "./null character special file 666 0:0 1:3",
		"./loop block special file 644 1234:4321 7:0", "./dir/big character special file 644 0:0 103:10001", "./sock socket 755 0:0 0:0"} {
		if !strings.Contains(want, line+"\n") {
			t.Fatalf("the source tree is not as made (%s):\n%s", line, want)
		}
	}

	s := newStore(t)
	m := s.mount("--allow-other")
	reachable(t, m)
	files := filepath.Join(m.dir, "files", "default")
	sh(t, "rsync -a "+src+"/ "+files+"/rsync/")
	if got := specialListing(t, files+"/rsync"); got != want {
		t.Errorf("rsync -a into files/:\n%s\nwant\n%s", got, want)
	}
	out := filepath.Join(t.TempDir(), "out")
	sh(t, "rsync -a "+files+"/rsync/ "+out+"/")
	if got := specialListing(t, out); got != want {
		t.Errorf("rsync -a out of files/:\n%s\nwant\n%s", got, want)
	}
	sh(t, "mkdir "+files+"/tar && tar -C "+src+" --exclude=./sock -cf - . | tar -C "+files+"/tar -xpf -")
	withoutSocket := strings.Replace(want, "./sock socket 755 0:0 0:0\n", "", 1)
	if got := specialListing(t, files+"/tar"); got != withoutSocket {
		t.Errorf("tar -x into files/:\n%s\nwant\n%s", got, withoutSocket)
	}
	if got := sh(t, "tar -C "+files+"/tar -cf - . | tar -tvf - | awk '{print $1, $2, $3, $4, $NF}' | sort"); got !=
		sh(t, "tar -C "+src+" --exclude=./sock -cf - . | tar -tvf - | awk '{print $1, $2, $3, $4, $NF}' | sort") {
		t.Errorf("tar -c of files/ lists\n%s", got)
	}

	// They work: a FIFO between two processes, a socket taking a
	// connection.
	if got := sh(t, "cd "+files+"/rsync && (echo through the fifo > fifo &) && cat fifo"); got != "through the fifo\n" {
		t.Errorf("read from a FIFO in files/: %q", got)
	}
	listener, err := net.Listen("unix", filepath.Join(files, "live.sock"))
	if err != nil {
		t.Fatalf("listening on a socket in files/: %v", err)
	}
	go func() {
		if c, err := listener.Accept(); err == nil {
			c.Write([]byte("through the socket"))
			c.Close()
		}
	}()
	conn, err := net.Dial("unix", filepath.Join(files, "live.sock"))
	if err != nil {
		t.Fatalf("connecting to a socket in files/: %v", err)
	}
	got, _ := io.ReadAll(conn)
	conn.Close()
	listener.Close()
	if string(got) != "through the socket" {
		t.Errorf("read from a socket in files/: %q", got)
	}
	sh(t, "mkdir -m 777 "+files+"/open")
	if out, ok := asNobody(t, "mknod "+files+"/open/dev c 1 3"); ok || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("mknod of a device as another user: %q, want Operation not permitted", out)
	}
	if out, ok := asNobody(t, "mkfifo "+files+"/open/fifo && stat -c '%F %u:%g' "+files+"/open/fifo"); !ok || out != "fifo 65534:65534\n" {
		t.Errorf("mkfifo as another user: %q, want a fifo of 65534:65534", out)
	}
	if out := shFails(t, "head -c 1 "+files+"/rsync/null"); !strings.Contains(out, "Permission denied") {
		t.Errorf("opening a device in files/: %q, want Permission denied (nodev)", out)
	}

	// A kill -9 of the daemon right after they are made loses none (nor a
	// regular file made with mknod(2), which is empty and stored at once).
	sh(t, "mkfifo "+files+"/late-fifo && mknod "+files+"/late-dev b 8 1")
	if err := syscall.Mknod(files+"/late-file", syscall.S_IFREG|0o640, 0); err != nil {
		t.Fatalf("mknod of a regular file: %v", err)
	}
	m.kill(t)
	m = s.mount()
	files = filepath.Join(m.dir, "files", "default")
	if got := specialListing(t, files+"/rsync"); got != want {
		t.Errorf("after a kill -9 and a remount:\n%s\nwant\n%s", got, want)
	}
	if got := sh(t, "stat -c '%F %t:%T %a' "+files+"/late-fifo "+files+"/late-dev "+files+"/late-file"); got !=
		"fifo 0:0 644\nblock special file 8:1 644\nregular empty file 0:0 640\n" {
		t.Errorf("made just before the kill -9: %q", got)
	}
	if _, err := syscall.Getxattr(files+"/late-file", "user.stofuse.ref", make([]byte, 100)); err != syscall.ENODATA {
		t.Errorf("user.stofuse.ref of an empty file made with mknod: %v, want ENODATA (no blob)", err)
	}

	snapshot := snapshotName(t, s)
	if got := specialListing(t, filepath.Join(m.dir, "snapshots", "default", snapshot, "rsync")); got != want {
		t.Errorf("in snapshots/:\n%s\nwant\n%s", got, want)
	}
	m = s.recoverAndMount(m)
	if got := specialListing(t, filepath.Join(m.dir, "files", "default", "rsync")); got != want {
		t.Errorf("after stofuse recover:\n%s\nwant\n%s", got, want)
	}
}
