package test

import (
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestScrubNamesSwappedBlobs: two blobs of one size whose files on a
// volume were swapped are each reported by scrub as holding the other's
// stored bytes (by its size and CRC-32C without a key, by its key with
// one), not as damaged headers; scrub --repair replaces both from the
// other volume; and when every copy is swapped, reads through the mount
// fail with EIO (no byte of the other blob) and nothing is overwritten.
func TestScrubNamesSwappedBlobs(t *testing.T) {
	requireFuse(t)
	s := newStore(t)
	backup := filepath.Join(t.TempDir(), "backup")
	s.mustRun("volume", "add", "backup", "--path", backup)
	src := t.TempDir()
	var refs []string
	for i, name := range []string{"a", "b"} {
		refs = append(refs, writeRandomFile(t, filepath.Join(src, name), uint64(200+i), 3<<17+5))
		s.mustRun("put", filepath.Join(src, name))
	}
	slices.Sort(refs) // the order scrub checks them in
	s.mustRun("replicate", "--from", "default", "--to", "backup")
	volume := filepath.Join(s.dir, "volumes", "default")
	crcs := map[string]string{}
	for _, ref := range refs {
		crcs[ref] = storedCRC(t, copyPath(volume, ref))
	}
	first, second := refs[0], refs[1]
	other := map[string]string{first: second, second: first}
	swapFiles(t, copyPath(volume, first), copyPath(volume, second))

	damaged := func(r result, why func(ref string) string) {
		t.Helper()
		var want, got []string
		for _, ref := range refs {
			want = append(want, fmt.Sprintf("DAMAGED  %s  volume default: stored bytes: they are blob %s's, not this blob's: %s",
				ref, other[ref], why(ref)))
		}
		for _, line := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(line, "DAMAGED") {
				got = append(got, line)
			}
		}
		if r.code != 1 || !slices.Equal(got, want) || !strings.Contains(r.stdout, " 2 damaged, 0 missing") {
			t.Errorf("scrub of the swapped blobs: exit %d\n%s\nwant exit 1 and\n%s", r.code, r.stdout, strings.Join(want, "\n"))
		}
	}
	damaged(s.run("scrub", "--volume", "default"), func(ref string) string {
		return fmt.Sprintf("they have its stored size and CRC-32C (%s; this blob's is %s)", crcs[other[ref]], crcs[ref])
	})
	damaged(s.run("--key-file", filepath.Join(s.dir, "key"), "scrub", "--volume", "default"), func(string) string {
		return "its key opens them as its own"
	})

	r := s.run("scrub", "--volume", "default", "--repair")
	for _, ref := range refs {
		if want := fmt.Sprintf("REPAIRED %s  volume default: damaged copy replaced from volume backup\n", ref); !strings.Contains(r.stdout, want) {
			t.Errorf("scrub --repair: no line %q:\n%s", want, r.stdout)
		}
	}
	if r.code != 0 {
		t.Errorf("scrub --repair: exit %d, want 0\n%s", r.code, r.stdout)
	}
	if r := s.run("scrub"); r.code != 0 || strings.Contains(r.stdout, "DAMAGED") {
		t.Errorf("scrub after the repair: exit %d\n%s", r.code, r.stdout)
	}
	for _, ref := range refs {
		if got := sha256Hex([]byte(s.mustRun("cat", ref))); got != ref {
			t.Errorf("cat %s after the repair: content hashes to %s", ref, got)
		}
	}

	// Every copy swapped: nothing to repair from.
	swapFiles(t, copyPath(volume, first), copyPath(volume, second))
	swapFiles(t, copyPath(backup, first), copyPath(backup, second))
	before := map[string][]byte{}
	for _, path := range []string{copyPath(volume, first), copyPath(backup, first)} {
		before[path] = must(os.ReadFile(path))
	}
	m := s.mount()
	out := filepath.Join(t.TempDir(), "out")
	if msg := shFails(t, "cat "+m.ref(first)+" > "+out); !strings.Contains(msg, "Input/output error") {
		t.Errorf("cat of ref/ of a blob swapped on every volume: %q, want Input/output error", msg)
	}
	if info, err := os.Stat(out); err != nil || info.Size() != 0 {
		t.Errorf("cat of ref/ of a blob swapped on every volume gave bytes: %v, %v", info, err)
	}
	m.unmount()
	log := string(must(os.ReadFile(filepath.Join(s.dir, "mount.log"))))
	if !strings.Contains(log, "blob "+first+" on volume 1 is corrupt (frame 0): fails authentication, though it matches its checksum: another blob's bytes") {
		t.Errorf("mount.log does not say why %s could not be read:\n%s", first, log)
	}
	for path, want := range before {
		if got := must(os.ReadFile(path)); string(got) != string(want) {
			t.Errorf("%s was overwritten by the mount's repair, though no copy was good", path)
		}
	}
	if r := s.run("scrub", "--repair"); r.code != 1 || strings.Contains(r.stdout, "REPAIRED") {
		t.Errorf("scrub --repair with every copy swapped: exit %d\n%s\nwant exit 1 and nothing repaired", r.code, r.stdout)
	}
}

// storedCRC is the CRC-32C of a stored file, as scrub prints it.
func storedCRC(t *testing.T, path string) string {
	t.Helper()
	return fmt.Sprintf("%08x", crc32.Checksum(must(os.ReadFile(path)), crc32.MakeTable(crc32.Castagnoli)))
}

// swapFiles swaps the contents of two files by renaming.
func swapFiles(t *testing.T, a, b string) {
	t.Helper()
	tmp := a + ".swap"
	for _, step := range [][2]string{{a, tmp}, {b, a}, {tmp, b}} {
		if err := os.Rename(step[0], step[1]); err != nil {
			t.Fatal(err)
		}
	}
}
