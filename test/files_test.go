package test

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
)

// posixNotApplicable are the posixtest cases that test what files/ does
// not offer, by design (README, "The files/ tree").
var posixNotApplicable = map[string]string{
	"Link":                "hard links are refused (EPERM): a name is one inode",
	"LinkUnlinkRename":    "uses hard links",
	"FcntlFlockLocksFile": "file locks are not forwarded (the mount does not enable them)",
	"FcntlFlockSetLk":     "file locks are not forwarded",
	"XAttr":               "user extended attributes are not kept (only user.stofuse.*)",
	"XAttrLarge":          "user extended attributes are not kept",
}

// TestFilesPosix runs go-fuse's posixtest suite against files/, each case
// in a fresh directory of a collection.
func TestFilesPosix(t *testing.T) {
	s := newStore(t)
	m := s.mount()
	names := make([]string, 0, len(posixtest.All))
	for name := range posixtest.All {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if why, ok := posixNotApplicable[name]; ok {
				t.Skip(why)
			}
			dir := filepath.Join(m.dir, "files", "default", name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			posixtest.All[name](t, dir)
		})
	}
}
