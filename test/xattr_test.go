package test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// xattrListing lists the user.* extended attributes of every file and
// directory of a tree but stofuse's own (user.stofuse.*, the blob's): one
// line per attribute, name=value (bytes outside printable ASCII as \xNN;
// a long value as its size and hash), sorted.
func xattrListing(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		buf := make([]byte, 64<<10)
		n, err := unix.Llistxattr(path, buf)
		if err != nil {
			return err
		}
		for name := range strings.SplitSeq(strings.TrimSuffix(string(buf[:n]), "\x00"), "\x00") {
			if name == "" || strings.HasPrefix(name, "user.stofuse.") {
				continue
			}
			value := make([]byte, 64<<10)
			size, err := unix.Lgetxattr(path, name, value)
			if err != nil {
				return err
			}
			shown := quoteBytes(value[:size])
			if size > 64 {
				shown = fmt.Sprintf("%d bytes, SHA-256 %s", size, sha256Hex(value[:size]))
			}
			lines = append(lines, rel+" "+name+"="+shown)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

func quoteBytes(b []byte) string {
	var out strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7f && c != '\\' {
			out.WriteByte(c)
		} else {
			out.WriteString(`\x` + string("0123456789abcdef"[c>>4]) + string("0123456789abcdef"[c&15]))
		}
	}
	return out.String()
}

func setXattr(t *testing.T, path, name string, value []byte) {
	t.Helper()
	if err := unix.Lsetxattr(path, name, value, 0); err != nil {
		t.Fatalf("setxattr %s %s: %v", path, name, err)
	}
}

// TestXattrs: user.* extended attributes of files and directories in
// files/ are kept: cp -a, rsync -X and tar --xattrs copy them in, cp -a
// and rsync -X out and within the
// mount (the user.stofuse.* attributes of a copy are the mount's own:
// setting them changes nothing), listxattr shows them beside
// user.stofuse.*, a hard link shares them, setxattr(2)'s flags and the
// 32 KiB limit hold, other namespaces are ENOTSUP; they survive a remount
// and a kill -9, are in snapshots (snapshots/ shows them) and come back
// with stofuse recover.
func TestXattrs(t *testing.T) {
	requireFuse(t)
	src := filepath.Join(t.TempDir(), "src")
	sh(t, "mkdir -p "+src+"/dir && echo hello > "+src+"/a && ln "+src+"/a "+src+"/dir/b && echo plain > "+src+"/plain")
	setXattr(t, src+"/a", "user.color", []byte("blue"))
	setXattr(t, src+"/a", "user.binary", []byte{0, 1, 2, 0xff, '\n'})
	setXattr(t, src+"/a", "user.empty", nil)
	setXattr(t, src+"/dir", "user.xdg.comment", []byte("a directory"))
	setXattr(t, src+"/plain", "user.big", bytes.Repeat([]byte("x"), 3<<10)) // ext4 holds 4 KiB
	want := xattrListing(t, src)
	if strings.Count(want, "\n") != 8 || !strings.Contains(want, "dir/b user.color=blue\n") {
		t.Fatalf("the source tree is not as made:\n%s", want)
	}

	s := newStore(t)
	m := s.mount()
	files := filepath.Join(m.dir, "files", "default")
	sh(t, "cp -a "+src+" "+files+"/cp")
	if got := xattrListing(t, files+"/cp"); got != want {
		t.Errorf("cp -a into files/:\n%s\nwant\n%s", got, want)
	}
	sh(t, "rsync -aHX "+src+"/ "+files+"/rsync/")
	if got := xattrListing(t, files+"/rsync"); got != want {
		t.Errorf("rsync -aX into files/:\n%s\nwant\n%s", got, want)
	}
	sh(t, "mkdir "+files+"/tar && tar --xattrs -C "+src+" -cf - . | tar --xattrs --xattrs-include='user.*' -C "+files+"/tar -xpf -")
	if got := xattrListing(t, files+"/tar"); got != want {
		t.Errorf("tar --xattrs -x into files/:\n%s\nwant\n%s", got, want)
	}
	out := filepath.Join(t.TempDir(), "out")
	sh(t, "rsync -aHX "+files+"/rsync/ "+out+"/")
	if got := xattrListing(t, out); got != want {
		t.Errorf("rsync -aX out of files/:\n%s\nwant\n%s", got, want)
	}
	sh(t, "cp -a "+files+"/cp "+files+"/cp2 && rsync -aX "+files+"/rsync/ "+files+"/rsync2/")
	for _, dir := range []string{"cp2", "rsync2"} {
		if got := xattrListing(t, files+"/"+dir); got != want {
			t.Errorf("a copy within the mount (%s):\n%s\nwant\n%s", dir, got, want)
		}
	}

	// listxattr shows them beside the blob's; one inode, one set.
	tree := files + "/rsync"
	buf := make([]byte, 4096)
	n, err := unix.Listxattr(tree+"/a", buf)
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Split(strings.TrimSuffix(string(buf[:n]), "\x00"), "\x00")
	for _, name := range []string{"user.stofuse.ref", "user.color", "user.binary", "user.empty"} {
		if !slices.Contains(names, name) {
			t.Errorf("listxattr of a: %q, without %s", names, name)
		}
	}
	var before syscall.Stat_t
	syscall.Stat(tree+"/dir/b", &before)
	setXattr(t, tree+"/a", "user.color", []byte("red"))
	if got := sh(t, "cat "+tree+"/dir/b"); got != "hello\n" {
		t.Errorf("b after a setxattr: %q", got)
	}
	value := make([]byte, 100)
	if size, err := unix.Getxattr(tree+"/dir/b", "user.color", value); err != nil || string(value[:size]) != "red" {
		t.Errorf("user.color through the other name: %q, %v", value[:size], err)
	}
	var after syscall.Stat_t
	syscall.Stat(tree+"/dir/b", &after)
	if after.Ctim == before.Ctim {
		t.Error("a setxattr left the ctime")
	}

	// setxattr(2)'s rules. extendedACL is user::rw-, user:1000:r--,
	// group::r--, mask::r--, other::r-- in the kernel's xattr encoding.
	extendedACL := []byte{2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, 2, 0, 4, 0, 0xe8, 3, 0, 0,
		4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff, 0x10, 0, 4, 0, 0xff, 0xff, 0xff, 0xff, 0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff}
	for _, c := range []struct {
		what  string
		err   error
		errno syscall.Errno
	}{
		{"XATTR_CREATE of an existing attribute", unix.Setxattr(tree+"/a", "user.color", nil, unix.XATTR_CREATE), syscall.EEXIST},
		{"XATTR_REPLACE of a missing one", unix.Setxattr(tree+"/a", "user.none", nil, unix.XATTR_REPLACE), syscall.ENODATA},
		{"more than 32 KiB in all", unix.Setxattr(tree+"/plain", "user.more", make([]byte, 29<<10+1), 0), syscall.ENOSPC},
		{"a trusted.* attribute", unix.Setxattr(tree+"/a", "trusted.x", []byte("1"), 0), syscall.ENOTSUP},
		{"an ACL", unix.Setxattr(tree+"/a", "system.posix_acl_access", extendedACL, 0), syscall.ENOTSUP},
		{"removexattr of an ACL", unix.Removexattr(tree+"/a", "system.posix_acl_access"), syscall.ENOTSUP},
		{"removexattr of a missing one", unix.Removexattr(tree+"/a", "user.none"), syscall.ENODATA},
	} {
		if !errors.Is(c.err, c.errno) {
			t.Errorf("%s: %v, want %v", c.what, c.err, c.errno)
		}
	}
	if _, err := unix.Getxattr(tree+"/a", "user.none", value); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("getxattr of a missing attribute: %v, want ENODATA", err)
	}
	large := bytes.Repeat([]byte("large"), 5<<10) // 25 KiB: more than ext4 holds, within 32 KiB
	setXattr(t, tree+"/dir/b", "user.large", large)
	if size, err := unix.Getxattr(tree+"/a", "user.large", make([]byte, 64<<10)); err != nil || size != len(large) {
		t.Errorf("a 25 KiB attribute: %d bytes, %v", size, err)
	}
	if err := unix.Removexattr(tree+"/a", "user.empty"); err != nil {
		t.Errorf("removexattr: %v", err)
	}
	if err := unix.Setxattr(tree+"/a", "user.stofuse.ref", []byte("not the ref"), 0); err != nil {
		t.Errorf("setxattr of user.stofuse.ref: %v, want it accepted and ignored", err)
	}
	ref := sha256Hex([]byte("hello\n"))
	if size, err := unix.Getxattr(tree+"/a", "user.stofuse.ref", value); err != nil || string(value[:size]) != ref {
		t.Errorf("user.stofuse.ref after setting it: %q, %v, want %s", value[:size], err, ref)
	}

	// A remount, then a kill -9 right after a setxattr.
	want = xattrListing(t, tree)
	m.unmount()
	m = s.mount()
	tree = filepath.Join(m.dir, "files", "default", "rsync")
	if got := xattrListing(t, tree); got != want {
		t.Errorf("after a remount:\n%s\nwant\n%s", got, want)
	}
	setXattr(t, tree+"/dir", "user.late", []byte("just before"))
	want = xattrListing(t, tree)
	m.kill(t)
	m = s.mount()
	tree = filepath.Join(m.dir, "files", "default", "rsync")
	if got := xattrListing(t, tree); got != want || !strings.Contains(got, "dir user.late=just before\n") {
		t.Errorf("after a kill -9 and a remount:\n%s\nwant\n%s", got, want)
	}

	// Snapshots keep them, and recover brings them back.
	snapshot := snapshotName(t, s)
	if got := xattrListing(t, filepath.Join(m.dir, "snapshots", "default", snapshot, "rsync")); got != want {
		t.Errorf("in snapshots/:\n%s\nwant\n%s", got, want)
	}
	m = s.recoverAndMount(m)
	tree = filepath.Join(m.dir, "files", "default", "rsync")
	if got := xattrListing(t, tree); got != want {
		t.Errorf("after stofuse recover:\n%s\nwant\n%s", got, want)
	}
}
