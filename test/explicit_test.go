package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// explicitLine is what stofuse stat says of a blob's explicit store.
func explicitLine(t *testing.T, s *store, ref string) string {
	t.Helper()
	for _, line := range strings.Split(s.mustRun("stat", ref), "\n") {
		if rest, ok := strings.CutPrefix(line, "explicit:    "); ok {
			return rest
		}
	}
	t.Fatalf("stofuse stat %s has no explicit line", ref)
	return ""
}

const (
	isExplicit  = "yes (stored with put or through ref/; kept until stofuse release)"
	notExplicit = "no (kept only while a file, a retained snapshot or the grace period uses it)"
)

// TestExplicitStores: what is written into ref/ (under its hex name,
// under another name, or again over a blob that files/ stored) and what
// put stores are explicit stores, a files/ file's content is not; release
// ends one, through the mount's daemon and without; a released blob is
// still in ref/ and reads back; rm of a blob is still EPERM.
func TestExplicitStores(t *testing.T) {
	s := newStore(t)
	m := s.mount()
	src := t.TempDir()
	streamed := writeRandomFile(t, filepath.Join(src, "streamed"), 1, 300_000)
	spooled := writeRandomFile(t, filepath.Join(src, "spooled"), 2, 1000)
	content := writeRandomFile(t, filepath.Join(src, "content"), 3, 5000)
	sh(t, "cp "+src+"/streamed "+m.ref(streamed)+" && cp "+src+"/spooled "+m.ref("some-name"))
	sh(t, "cp "+src+"/content "+filepath.Join(m.dir, "files", "default", "content"))
	if got := explicitLine(t, s, streamed); got != isExplicit {
		t.Errorf("a blob copied into ref/<hex>: explicit %q", got)
	}
	if got := explicitLine(t, s, spooled); got != isExplicit {
		t.Errorf("a blob copied into ref/ under another name: explicit %q", got)
	}
	if got := explicitLine(t, s, content); got != notExplicit {
		t.Errorf("a files/ file's content: explicit %q", got)
	}
	// Written again into ref/, over the blob files/ stored, after a
	// snapshot whose blob index holds it as no explicit store.
	s.mustRun("snapshot")
	sh(t, "cp "+src+"/content "+m.ref(content))
	if got := explicitLine(t, s, content); got != isExplicit {
		t.Errorf("a files/ blob copied into ref/ again: explicit %q", got)
	}
	if out := shFails(t, "rm "+m.ref(streamed)); !strings.Contains(out, "Operation not permitted") {
		t.Errorf("rm of a blob in ref/: %q, want EPERM", out)
	}

	if out := s.mustRun("release", streamed); out != streamed+"  released\n" {
		t.Errorf("release through the mount said %q", out)
	}
	if out := s.mustRun("release", streamed); out != streamed+"  not an explicit store (nothing to release)\n" {
		t.Errorf("a second release said %q", out)
	}
	if got := explicitLine(t, s, streamed); got != notExplicit {
		t.Errorf("a released blob: explicit %q", got)
	}
	if got := sh(t, "ls "+m.dir+"/ref/ | grep -c "+streamed); got != "1\n" {
		t.Errorf("a released blob is not listed in ref/")
	}
	if got := sh(t, "sha256sum < "+m.ref(streamed)); !strings.HasPrefix(got, streamed) {
		t.Errorf("a released blob reads back as %s", got)
	}
	unknown := sha256Hex([]byte("never stored"))
	if r := s.run("release", unknown); r.code != 1 || r.stderr != "stofuse: no blob "+unknown+"\n" {
		t.Errorf("release of an unknown blob: exit %d, %q", r.code, r.stderr)
	}
	if r := s.run("release"); r.code != 2 || r.stderr != "stofuse: release needs at least one REF\n" {
		t.Errorf("release without a REF: exit %d, %q", r.code, r.stderr)
	}
	m.unmount()

	// Without a mount: put of a released blob makes it one again.
	if out := s.mustRun("put", filepath.Join(src, "streamed")); !strings.HasPrefix(out, streamed) {
		t.Fatalf("put said %q", out)
	}
	if got := explicitLine(t, s, streamed); got != isExplicit {
		t.Errorf("a released blob put again: explicit %q", got)
	}
	if out := s.mustRun("--json", "release", spooled); out != `{"ref":"`+spooled+`","released":true}`+"\n" {
		t.Errorf("release --json said %q", out)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "volumes", "default", spooled[:3], spooled)); err != nil {
		t.Errorf("a released blob's file is gone before any gc: %v", err)
	}

	// The metadata is lost before any snapshot wrote the index again: the
	// explicit store made through ref/ comes back all the same (the volume
	// noted it), and so does the put one; so does the one released since
	// the index was written (a release reaches the volume with the next
	// index: until then the blob is kept, which is the safe side).
	if err := os.RemoveAll(filepath.Join(s.dir, "meta")); err != nil {
		t.Fatal(err)
	}
	s.mustRun("recover", "--from", filepath.Join(s.dir, "volumes", "default"))
	for ref, want := range map[string]string{content: isExplicit, streamed: isExplicit, spooled: isExplicit} {
		if got := explicitLine(t, s, ref); got != want {
			t.Errorf("after recover, %s: explicit %q, want %q", ref, got, want)
		}
	}
}
