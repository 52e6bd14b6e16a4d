package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFullVolumeNamesStayHonest: on a volume with no room left, cp of a
// new file into files/ fails at close with ENOSPC ("No space left on
// device") and the name goes (it does not stay behind as an empty file
// that looks complete), also after a kill -9; a rewrite of a stored file
// that fails keeps its old content; a file that fits is stored after the
// failures (they took no room), and what was stored before is intact.
func TestFullVolumeNamesStayHonest(t *testing.T) {
	requireRoot(t)
	volume := filepath.Join(mountTmpfs(t, 8<<20), "volume")
	s := newStore(t)
	s.mustRun("volume", "add", "small", "--path", volume)
	m := s.mount("--volume", "small")
	files := filepath.Join(m.dir, "files", "default")
	src := t.TempDir()
	small := writeRandomFile(t, filepath.Join(src, "small"), 1, 1<<20)
	writeRandomFile(t, filepath.Join(src, "big"), 2, 20<<20)
	sh(t, "cp "+src+"/small "+files+"/kept")

	out := shFails(t, "cp "+src+"/big "+files+"/new")
	if !strings.Contains(out, "No space left on device") {
		t.Errorf("cp of a file larger than the volume: %q, want No space left on device", out)
	}
	waitFor(t, "the name of the file that could not be stored to go", func() bool {
		_, err := os.Lstat(files + "/new")
		return os.IsNotExist(err)
	})
	if got := sh(t, "ls "+files); got != "kept\n" {
		t.Errorf("files/ after the failed copy: %q, want only kept", got)
	}
	out = shFails(t, "cp "+src+"/big "+files+"/kept")
	if !strings.Contains(out, "No space left on device") {
		t.Errorf("a rewrite larger than the volume: %q, want No space left on device", out)
	}
	waitFor(t, "the failed rewrite to be released", func() bool {
		return sh(t, "sha256sum < "+files+"/kept | cut -c1-64") == small+"\n"
	})

	// A kill -9 right after a failed copy: the name is gone after the
	// remount too.
	shFails(t, "cp "+src+"/big "+files+"/again")
	m.kill(t)
	m = s.mount("--volume", "small")
	files = filepath.Join(m.dir, "files", "default")
	if got := sh(t, "ls "+files); got != "kept\n" {
		t.Errorf("files/ after a failed copy and a kill -9: %q, want only kept", got)
	}

	// What fits is stored as before: the failures took no room.
	other := writeRandomFile(t, filepath.Join(src, "other"), 3, 2<<20)
	sh(t, "cp "+src+"/other "+files+"/after")
	if got := sh(t, "sha256sum < "+files+"/after | cut -c1-64"); got != other+"\n" {
		t.Errorf("a copy that fits, after the failures: %s", got)
	}
	if got := sh(t, "sha256sum < "+files+"/kept | cut -c1-64"); got != small+"\n" {
		t.Errorf("the stored file after the failures: %s", got)
	}
}
