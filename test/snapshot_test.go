package test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var snapshotLine = regexp.MustCompile(`(?m)^default: snapshot (\S+) \((\d+) directories encoded, (\d+) new blobs`)

// TestSnapshotsThroughTheMount: a tree copied into files/ is snapshotted
// through the mount's daemon; after a change and a delete, the second
// snapshot encodes only the changed path, and snapshot diff names exactly
// what changed; unmounting takes a last snapshot of what changed since.
func TestSnapshotsThroughTheMount(t *testing.T) {
	src := filepath.Join(goSource(t), "encoding")
	s := newStore(t)
	m := s.mount()
	tree := filepath.Join(m.dir, "files", "default", "encoding")
	sh(t, "cp -a "+src+" "+tree)

	first := snapshotLine.FindStringSubmatch(s.mustRun("snapshot"))
	if first == nil {
		t.Fatalf("stofuse snapshot printed no snapshot line")
	}
	if out := s.mustRun("snapshot"); !strings.Contains(out, "default: unchanged since snapshot "+first[1]) {
		t.Errorf("a snapshot of an unchanged tree: %q", out)
	}

	sh(t, "echo changed >> "+tree+"/json/encode.go && rm "+tree+"/csv/reader.go && mkdir "+tree+"/new && echo x > "+tree+"/new/file")
	second := snapshotLine.FindStringSubmatch(s.mustRun("snapshot"))
	if second == nil || second[1] <= first[1] {
		t.Fatalf("the second snapshot: %v after %s", second, first[1])
	}
	// Changed: json, csv, new and encoding itself, and the root.
	if second[2] != "5" {
		t.Errorf("the second snapshot encoded %s directories, want 5 (the changed ones and their parents)", second[2])
	}

	list := s.mustRun("snapshot", "ls")
	if want := "default      " + first[1] + "\ndefault      " + second[1] + "\n"; list != want {
		t.Errorf("snapshot ls:\n%s\nwant:\n%s", list, want)
	}
	diff := s.mustRun("snapshot", "diff", first[1], "latest")
	// The files, and the directories whose times changed with them.
	allowed := map[string]bool{"- encoding/csv/reader.go": true, "M encoding/json/encode.go": true,
		"+ encoding/new": true, "+ encoding/new/file": true,
		"M encoding": false, "M encoding/csv": false, "M encoding/json": false}
	for _, line := range strings.Split(strings.TrimSpace(diff), "\n") {
		if _, ok := allowed[line]; !ok {
			t.Errorf("snapshot diff says %q", line)
		}
		delete(allowed, line)
	}
	for line, needed := range allowed {
		if needed {
			t.Errorf("snapshot diff does not say %q:\n%s", line, diff)
		}
	}

	sh(t, "rm -r "+tree+"/base64")
	m.unmount()
	list = s.mustRun("snapshot", "ls")
	if strings.Count(list, "\n") != 3 {
		t.Errorf("after the unmount, snapshot ls:\n%s\nwant a third snapshot taken at unmount", list)
	}
	if r := s.run("scrub"); r.code != 0 || !strings.Contains(r.stdout, " 0 damaged, 0 missing, 0 orphans") {
		t.Errorf("scrub after the snapshots: exit %d\n%s", r.code, r.stdout)
	}
}
