package test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// linkGroups describes a tree's hard links as find sees them: for every
// inode with more than one name, its link count and its names (sorted),
// one line each, the lines sorted; and every regular file's SHA-256 by
// name. Two trees with the same groups link the same names together,
// whatever their inode numbers.
func linkGroups(t *testing.T, dir string) string {
	t.Helper()
	groups := map[uint64][]string{}
	nlinks := map[uint64]uint64{}
	var contents []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		name, _ := filepath.Rel(dir, path)
		groups[st.Ino] = append(groups[st.Ino], name)
		nlinks[st.Ino] = uint64(st.Nlink)
		if d.Type().IsRegular() {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			contents = append(contents, name+" "+sha256Hex(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for ino, names := range groups {
		if len(names) > 1 || nlinks[ino] != 1 {
			slices.Sort(names)
			lines = append(lines, fmt.Sprintf("%d: %s", nlinks[ino], strings.Join(names, " ")))
		}
	}
	slices.Sort(lines)
	slices.Sort(contents)
	return strings.Join(lines, "\n") + "\n--\n" + strings.Join(contents, "\n")
}

func inoOf(t *testing.T, path string) (ino, nlink uint64) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino, uint64(st.Nlink)
}

// TestHardLinks: link(2) in files/. rsync -aH, tar and cp -al copy a tree
// of hard-linked files, symlinks and FIFOs in and out with the same names
// linked together; a write through one name shows through the others;
// unlink of one name and a rename over one keep the others, with the
// link counts right; links across collections, from ref/ and of
// directories are refused as link(2) says; inode numbers and links
// survive a remount, a kill -9 of the daemon, a snapshot (snapshots/
// shows them linked) and stofuse recover.
func TestHardLinks(t *testing.T) {
	requireFuse(t)
	src := filepath.Join(t.TempDir(), "src")
	sh(t, "mkdir -p "+src+"/sub "+src+"/deep/er && cd "+src+
		" && head -c 300000 /dev/urandom > a && ln a b && ln a sub/c && ln a deep/er/d"+
		" && echo single > single && echo pair > p1 && ln p1 sub/p2"+
		" && ln -s a sym && ln sym sub/sym2 && mkfifo fifo && ln fifo sub/fifo2")
	want := linkGroups(t, src)
	for _, line := range []string{"4: a b deep/er/d sub/c", "2: p1 sub/p2", "2: sub/sym2 sym", "2: fifo sub/fifo2"} {
		if !strings.Contains(want, line+"\n") {
			t.Fatalf("the source tree is not as made (%s):\n%s", line, want)
		}
	}

	s := newStore(t)
	m := s.mount()
	files := filepath.Join(m.dir, "files", "default")
	sh(t, "rsync -aH "+src+"/ "+files+"/rsync/")
	if got := linkGroups(t, files+"/rsync"); got != want {
		t.Errorf("rsync -aH into files/:\n%s\nwant\n%s", got, want)
	}
	out := filepath.Join(t.TempDir(), "out")
	sh(t, "rsync -aH "+files+"/rsync/ "+out+"/")
	if got := linkGroups(t, out); got != want {
		t.Errorf("rsync -aH out of files/:\n%s\nwant\n%s", got, want)
	}
	// GNU tar archives a FIFO's second name as a FIFO of its own, so the
	// tree tar makes on a local disk is what to compare with.
	local := filepath.Join(t.TempDir(), "tar")
	sh(t, "mkdir "+local+" && tar -C "+src+" -cf - . | tar -C "+local+" -xpf -")
	sh(t, "mkdir "+files+"/tar && tar -C "+src+" -cf - . | tar -C "+files+"/tar -xpf -")
	if got, wantTar := linkGroups(t, files+"/tar"), linkGroups(t, local); got != wantTar {
		t.Errorf("tar -x into files/:\n%s\nwant\n%s", got, wantTar)
	}
	tarLinks := "tar -cf - . | tar -tvf - | grep -c ' link to '"
	if got, wantLinks := sh(t, "cd "+files+"/tar && "+tarLinks), sh(t, "cd "+src+" && "+tarLinks); got != wantLinks {
		t.Errorf("tar -c of files/ has %s hard-link members, the source %s", got, wantLinks)
	}
	sh(t, "cp -al "+files+"/tar "+files+"/cpal")
	if _, nlink := inoOf(t, files+"/tar/a"); nlink != 8 {
		t.Errorf("after cp -al, a has %d links, want 8", nlink)
	}

	// One inode under every name: a write through one shows through the
	// others, and the attributes are one.
	tree := files + "/rsync"
	ino, _ := inoOf(t, tree+"/a")
	for _, name := range []string{"b", "sub/c", "deep/er/d"} {
		if other, nlink := inoOf(t, tree+"/"+name); other != ino || nlink != 4 {
			t.Errorf("%s: inode %d with %d links, want %d with 4", name, other, nlink, ino)
		}
	}
	sh(t, "echo appended >> "+tree+"/b && chmod 600 "+tree+"/sub/c")
	if a, b := sh(t, "sha256sum < "+tree+"/a"), sh(t, "sha256sum < "+tree+"/b"); a != b {
		t.Errorf("a write through b does not show through a: %s vs %s", a, b)
	}
	if got := sh(t, "stat -c %a "+tree+"/deep/er/d"); got != "600\n" {
		t.Errorf("a chmod through one name: another shows mode %s", got)
	}

	// Unlink of one name keeps the others; an open file keeps its data
	// and sees its link count drop.
	f, err := os.Open(tree + "/a")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	content := sh(t, "sha256sum < "+tree+"/a")
	sh(t, "rm "+tree+"/a")
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil || st.Nlink != 3 {
		t.Errorf("fstat of an open file after one of its four names went: %d links, %v", st.Nlink, err)
	}
	f.Close()
	if got := sh(t, "sha256sum < "+tree+"/b"); got != content {
		t.Errorf("b after rm a: %s, want %s", got, content)
	}
	// A rename over one name drops that name only.
	sh(t, "echo new > "+files+"/new && mv "+files+"/new "+tree+"/b")
	if got := sh(t, "cat "+tree+"/b"); got != "new\n" {
		t.Errorf("b after a rename over it: %q", got)
	}
	if _, nlink := inoOf(t, tree+"/sub/c"); nlink != 2 {
		t.Errorf("sub/c after a rename over b: %d links, want 2", nlink)
	}
	if got := sh(t, "sha256sum < "+tree+"/sub/c"); got != content {
		t.Errorf("sub/c after a rename over b: %s, want %s", got, content)
	}

	// Refusals, as link(2) and rename(2) say.
	sh(t, "mkdir "+m.dir+"/files/other")
	if err := os.Link(tree+"/sub/c", m.dir+"/files/other/c"); !errors.Is(err, syscall.EXDEV) {
		t.Errorf("a link into another collection: %v, want EXDEV", err)
	}
	if err := os.Rename(tree+"/sub/c", m.dir+"/files/other/c"); !errors.Is(err, syscall.EXDEV) {
		t.Errorf("a rename of a linked file into another collection: %v, want EXDEV", err)
	}
	if err := os.Rename(tree+"/single", m.dir+"/files/other/single"); err != nil {
		t.Errorf("a rename of a file with one name into another collection: %v", err)
	}
	if err := syscall.Link(tree+"/sub", tree+"/sub-link"); !errors.Is(err, syscall.EPERM) {
		t.Errorf("a link of a directory: %v, want EPERM", err)
	}
	blob := m.ref(sha256Hex([]byte("pair\n")))
	if err := os.Link(blob, tree+"/from-ref"); !errors.Is(err, syscall.EXDEV) {
		t.Errorf("a link of a blob in ref/ into files/: %v, want EXDEV", err)
	}
	if err := os.Link(tree+"/p1", tree+"/sub/p2"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("a link onto an existing name: %v, want EEXIST", err)
	}

	// Remount, then kill -9 right after a link: names, counts and inode
	// numbers stay.
	before := linkGroups(t, tree)
	cInode, _ := inoOf(t, tree+"/sub/c")
	m.unmount()
	m = s.mount()
	files = filepath.Join(m.dir, "files", "default")
	tree = files + "/rsync"
	if got := linkGroups(t, tree); got != before {
		t.Errorf("after a remount:\n%s\nwant\n%s", got, before)
	}
	if got, _ := inoOf(t, tree+"/sub/c"); got != cInode {
		t.Errorf("sub/c is inode %d after a remount, %d before", got, cInode)
	}
	sh(t, "ln "+tree+"/sub/c "+tree+"/late")
	before = linkGroups(t, tree)
	m.kill(t)
	m = s.mount()
	tree = filepath.Join(m.dir, "files", "default", "rsync")
	if got := linkGroups(t, tree); got != before || !strings.Contains(got, "3: deep/er/d late sub/c\n") {
		t.Errorf("after a kill -9 and a remount:\n%s\nwant\n%s", got, before)
	}

	// Snapshots keep them, and recover brings them back.
	snapshot := snapshotName(t, s)
	if got := linkGroups(t, filepath.Join(m.dir, "snapshots", "default", snapshot, "rsync")); got != before {
		t.Errorf("in snapshots/:\n%s\nwant\n%s", got, before)
	}
	m = s.recoverAndMount(m)
	tree = filepath.Join(m.dir, "files", "default", "rsync")
	if got := linkGroups(t, tree); got != before {
		t.Errorf("after stofuse recover:\n%s\nwant\n%s", got, before)
	}
	if got, _ := inoOf(t, tree+"/sub/c"); got != cInode {
		t.Errorf("sub/c is inode %d after a recover, %d before", got, cInode)
	}
	// The recovered links are links: a new one counts on, the last name
	// removed frees the inode.
	sh(t, "ln "+tree+"/sub/c "+tree+"/after && rm "+tree+"/late "+tree+"/deep/er/d")
	if _, nlink := inoOf(t, tree+"/after"); nlink != 2 {
		t.Errorf("after a link and two removals in a recovered tree: %d links, want 2", nlink)
	}
}
