package badger

import (
	"os"
	"slices"
	"testing"
	"testing/fstest"
)

func TestOlderLogs(t *testing.T) {
	fsys := fstest.MapFS{}
	for _, name := range []string{"000007.mem", "000012.mem", "000009.mem", "000001.vlog", "MANIFEST", "000003.sst", "x.mem", "KEYREGISTRY"} {
		fsys[name] = &fstest.MapFile{}
	}
	entries, err := fsys.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	if got := olderLogs(entries, ".mem"); !slices.Equal(sorted(got), []string{"000007.mem", "000009.mem"}) {
		t.Errorf("older memtable logs: %v", got)
	}
	if got := olderLogs(entries, ".vlog"); len(got) != 0 {
		t.Errorf("older value logs: %v", got)
	}
	if got := olderLogs([]os.DirEntry{}, ".mem"); len(got) != 0 {
		t.Errorf("no logs: %v", got)
	}
}

func sorted(names []string) []string {
	slices.Sort(names)
	return names
}
