package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyPath is where a localfs volume keeps blob ref.
func copyPath(volume, ref string) string { return filepath.Join(volume, ref[:3], ref) }

// flipFrame flips a byte in stored frame i of a blob of incompressible
// content with 128 KiB frames: a 48-byte header, then frames of 128 KiB
// and a 16-byte tag each.
func flipFrame(t *testing.T, path string, i int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	at := int64(48 + i*(128<<10+16) + 1000)
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

// TestMountReadsAroundDamage: a blob kept on two volumes reads through the
// mount with the right bytes when the mounted volume's copy is damaged in
// a frame, when it is gone, and when both copies are damaged in different
// frames (frame by frame from each); only a frame damaged in both copies
// is EIO, for that blob alone. Each damaged copy is logged once, and the
// daemon replaces it with a verified copy from the other volume, or, when
// no copy is whole, both with one assembled from their good frames: scrub
// finds those clean afterwards.
func TestMountReadsAroundDamage(t *testing.T) {
	requireFuse(t)
	s := newStore(t)
	backup := filepath.Join(t.TempDir(), "backup")
	s.mustRun("volume", "add", "backup", "--path", backup)
	src := t.TempDir()
	names := []string{"frame", "gone", "both-different", "both-same", "intact"}
	refs := map[string]string{}
	for i, name := range names {
		refs[name] = writeRandomFile(t, filepath.Join(src, name), uint64(100+i), 5<<17+777) // 6 frames
		s.mustRun("put", filepath.Join(src, name))
	}
	s.mustRun("replicate", "--from", "default", "--to", "backup")
	volume := filepath.Join(s.dir, "volumes", "default")
	flipFrame(t, copyPath(volume, refs["frame"]), 2)
	if err := os.Remove(copyPath(volume, refs["gone"])); err != nil {
		t.Fatal(err)
	}
	flipFrame(t, copyPath(volume, refs["both-different"]), 1)
	flipFrame(t, copyPath(backup, refs["both-different"]), 4)
	flipFrame(t, copyPath(volume, refs["both-same"]), 3)
	flipFrame(t, copyPath(backup, refs["both-same"]), 3)

	m := s.mount()
	for _, name := range []string{"frame", "gone", "both-different", "intact"} {
		for round := range 2 {
			if got := sh(t, "sha256sum < "+m.ref(refs[name])+" | cut -c1-64"); got != refs[name]+"\n" {
				t.Errorf("cat of ref/ of %q (round %d): SHA-256 %s", name, round, got)
			}
		}
	}
	out := shFails(t, "cat "+m.ref(refs["both-same"])+" > /dev/null")
	if !strings.Contains(out, "Input/output error") {
		t.Errorf("cat of a blob damaged in the same frame of both copies: %q, want Input/output error", out)
	}
	log := func() string {
		b, _ := os.ReadFile(filepath.Join(s.dir, "mount.log"))
		return string(b)
	}
	waitFor(t, "the daemon to repair the copies damaged in one place", func() bool {
		return strings.Count(log(), "replaced with a verified copy from volume backup") == 2
	})
	waitFor(t, "the daemon to repair both copies of the blob damaged in different frames", func() bool {
		return strings.Contains(log(), "blob "+refs["both-different"]+": no copy was whole; the copy on volume default replaced with one "+
			"assembled from the good frames of every copy, and with it the copy on volume backup")
	})
	for _, name := range []string{"frame", "gone", "both-different"} {
		if n := strings.Count(log(), "blob "+refs[name]+": "); n != 2 {
			t.Errorf("%q: %d lines of its damage and repair in mount.log, want 2 (logged once, then its outcome):\n%s", name, n, log())
		}
	}
	if strings.Contains(log(), refs["intact"]) {
		t.Errorf("the intact blob is in mount.log:\n%s", log())
	}
	m.unmount()

	r := s.run("scrub")
	for _, name := range []string{"frame", "gone", "both-different", "intact"} {
		if strings.Contains(r.stdout, refs[name]) {
			t.Errorf("scrub after the repairs names %q:\n%s", name, r.stdout)
		}
	}
	if strings.Count(r.stdout, refs["both-same"]) != 2 || strings.Count(r.stdout, " 1 damaged, 0 missing") != 2 {
		t.Errorf("scrub after the repairs: want both copies of the blob damaged in the same frame, and only them:\n%s", r.stdout)
	}
	m = s.mount()
	for _, name := range []string{"frame", "gone", "both-different", "intact"} {
		if got := sh(t, "sha256sum < "+m.ref(refs[name])+" | cut -c1-64"); got != refs[name]+"\n" {
			t.Errorf("cat of ref/ of %q after the repairs: SHA-256 %s", name, got)
		}
	}
}

// TestMountReadsOtherVolumes: a mount of one volume reads a file of
// files/ whose blob only another volume of the store holds (it was never
// copied there) from that volume, and nothing is logged as damage.
func TestMountReadsOtherVolumes(t *testing.T) {
	requireFuse(t)
	s := newStore(t)
	s.mustRun("volume", "add", "backup", "--path", filepath.Join(t.TempDir(), "backup"))
	m := s.mount()
	want := writeRandomFile(t, filepath.Join(m.dir, "files", "default", "f"), 7, 300_000)
	m.unmount()
	m = s.mount("--volume", "backup")
	if got := sh(t, "sha256sum < "+filepath.Join(m.dir, "files", "default", "f")+" | cut -c1-64"); got != want+"\n" {
		t.Errorf("a file whose blob only the other volume holds: SHA-256 %s, want %s", got, want)
	}
	m.unmount()
	if log, _ := os.ReadFile(filepath.Join(s.dir, "mount.log")); strings.Contains(string(log), "damaged") || strings.Contains(string(log), "missing") {
		t.Errorf("mount.log:\n%s", log)
	}
}

// TestScheduledScrub: a mount with --scrub-every scrubs the volumes that
// are due at --scrub-rate, in the background; an unmount interrupts it
// and the next mount goes on where it was; what it finds is repaired from
// the other volume and logged, and scrub --status shows the last scrub.
func TestScheduledScrub(t *testing.T) {
	requireFuse(t)
	s := newStore(t)
	s.mustRun("volume", "add", "backup", "--path", filepath.Join(t.TempDir(), "backup"))
	src := t.TempDir()
	var damaged string
	args := []string{"put"}
	for i := range 24 {
		path := filepath.Join(src, fmt.Sprint(i))
		ref := writeRandomFile(t, path, uint64(200+i), 200_000)
		if i == 17 {
			damaged = ref
		}
		args = append(args, path)
	}
	s.mustRun(args...)
	s.mustRun("replicate", "--from", "default", "--to", "backup")
	flipFrame(t, copyPath(filepath.Join(s.dir, "volumes", "default"), damaged), 1)
	log := func() string {
		b, _ := os.ReadFile(filepath.Join(s.dir, "mount.log"))
		return string(b)
	}

	// 4.8 MB at 1 MiB/s: the unmount comes in the middle.
	m := s.mount("--scrub-every", "1h", "--scrub-rate", "1M")
	waitFor(t, "the scheduled scrub to start", func() bool {
		return strings.Contains(log(), "scheduled scrub: starting the scrub of volume default")
	})
	m.unmount()
	waitFor(t, "the interrupted scrub to be logged", func() bool {
		return strings.Contains(log(), "scheduled scrub of volume default interrupted after ")
	})
	if out := s.mustRun("scrub", "--status", "--volume", "default"); !strings.Contains(out, "interrupted at") {
		t.Errorf("scrub --status after the unmount:\n%s", out)
	}
	started := func() string {
		var state struct {
			Started string `json:"started"`
		}
		json.Unmarshal([]byte(strings.SplitN(s.mustRun("--json", "scrub", "--status", "--volume", "default"), "\n", 2)[0]), &state)
		return state.Started
	}
	interrupted := started()

	m = s.mount("--scrub-every", "1h", "--scrub-rate", "100M")
	waitFor(t, "the scheduled scrub to finish after the remount", func() bool {
		return strings.Contains(log(), "scheduled scrub of volume backup: ")
	})
	l := log()
	for _, want := range []string{
		"scheduled scrub: going on with the scrub of volume default",
		"scheduled scrub: damaged " + damaged + " on volume default: frame 1: ",
		"scheduled scrub: repaired " + damaged + " on volume default: damaged copy replaced from volume backup",
		"scheduled scrub of volume default: ",
	} {
		if !strings.Contains(l, want) {
			t.Errorf("mount.log lacks %q:\n%s", want, l)
		}
	}
	if resumed := started(); resumed != interrupted || resumed == "" {
		t.Errorf("the scrub after the remount started at %q, the interrupted one at %q: it did not go on", resumed, interrupted)
	}
	if out := s.mustRun("scrub", "--status"); strings.Count(out, "last scrub ") != 2 {
		t.Errorf("scrub --status after the scheduled scrubs:\n%s", out)
	}
	m.unmount()
	if r := s.run("scrub"); r.code != 0 || strings.Count(r.stdout, " 0 damaged, 0 missing") != 2 {
		t.Errorf("scrub after the scheduled scrub repaired: exit %d\n%s", r.code, r.stdout)
	}
}
