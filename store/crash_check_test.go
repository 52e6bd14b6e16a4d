package store_test

import (
	"bytes"
	"context"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/store"
)

// What the crash tests expect of a store after a crash, and how they check
// it.

// modelFile is what the workload did to one inode of the tree.
type modelFile struct {
	ino          uint64
	synced       []byte // its content at the last Sync
	syncedMtime  time.Time
	existed      bool // it existed at the last Sync
	current      []byte
	currentMtime time.Time
	touched      bool       // its content was committed since the last Sync
	replaced     *modelFile // the file it was renamed over since the last Sync
}

// survivor is what is left of f after a crash that lost the blobs in
// lost: its new content if that survived, else its content at the last
// Sync, else nothing (ok false).
func (f *modelFile) survivor(lost map[blobstore.Ref]bool) (want wantFile, ok bool) {
	switch {
	case !f.touched || !lost[blobstore.RefOf(f.current)]:
		return wantFile{ino: f.ino, content: f.current, mtime: f.currentMtime}, true
	case f.existed:
		return wantFile{ino: f.ino, content: f.synced, mtime: f.syncedMtime}, true
	}
	return wantFile{}, false
}

// wantFile is a file as the tree must hold it.
type wantFile struct {
	ino     uint64
	content []byte
	mtime   time.Time
}

// checkAfterCrash checks the reopened store against the model: a file
// not touched since the last Sync is as it was then; a touched one has its
// new content if that survived, else its content at the last Sync, or is
// gone if it was new, unless it was renamed over a file that survived,
// which is back; the volume holds exactly the blobs the metadata lists,
// intact; the settle report says what was done.
func (e *crashEnv) checkAfterCrash(lost map[blobstore.Ref]bool) {
	t := e.t
	t.Helper()
	want, wantReverted, wantRemoved, wantKept := e.expected(lost)
	e.checkTree(want)
	r := e.s.Settled()
	t.Log(r.String())
	slices.Sort(wantReverted)
	slices.Sort(wantRemoved)
	slices.Sort(r.Reverted)
	slices.Sort(r.Removed)
	if r.Clean != !e.wroteSinceSync || !slices.Equal(r.Reverted, wantReverted) || !slices.Equal(r.Removed, wantRemoved) ||
		r.Kept != wantKept || r.Checked < len(lost) || len(r.Lost) != len(lost) || len(r.Unchecked) != 0 {
		t.Errorf("settle report %+v\nwant clean %v, reverted %v, removed %v, %d kept, %d lost",
			r, !e.wroteSinceSync, wantReverted, wantRemoved, wantKept, len(lost))
	}
	sum := e.s.ScrubVolume(context.Background(), e.volume, store.ScrubOptions{})
	if sum.Damaged+sum.Missing+sum.Orphans+sum.Failures != 0 {
		t.Errorf("scrub after settling: %+v", sum)
	}
}

// expected is the tree the model says a crash that lost the blobs in lost
// leaves, with the files settling must report put back, removed and kept.
func (e *crashEnv) expected(lost map[blobstore.Ref]bool) (want map[string]wantFile, reverted, removed []string, kept int) {
	want = map[string]wantFile{}
	for name, f := range e.files {
		if w, ok := f.survivor(lost); ok {
			want[name] = w
			switch {
			case f.touched && !lost[blobstore.RefOf(f.current)]:
				kept++
			case f.touched:
				reverted = append(reverted, "default/"+name)
			}
			continue
		}
		// Gone, unless it replaced a file that survived.
		removed = append(removed, "default/"+name)
		for r := f.replaced; r != nil; r = r.replaced {
			if w, ok := r.survivor(lost); ok {
				want[name] = w
				removed = removed[:len(removed)-1]
				reverted = append(reverted, "default/"+name)
				break
			}
		}
	}
	return want, reverted, removed, kept
}

// checkTree checks that the tree holds exactly the files of want, each
// the inode it must be, with its content (read back through the
// Controller) and mtime.
func (e *crashEnv) checkTree(want map[string]wantFile) {
	t := e.t
	t.Helper()
	ctx := context.Background()
	var got []string
	for dirName, dir := range e.dirs {
		err := e.s.Meta().ReadDir(ctx, dir, "", func(entry badger.Entry) error {
			if entry.Kind == badger.KindFile {
				got = append(got, path.Join(dirName, entry.Name))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var wantNames []string
	for name := range want {
		wantNames = append(wantNames, name)
	}
	slices.Sort(got)
	slices.Sort(wantNames)
	if !slices.Equal(got, wantNames) {
		t.Errorf("files %v, want %v", got, wantNames)
	}
	for name, w := range want {
		dir, base := path.Split(name)
		n, err := e.s.Meta().Lookup(ctx, e.dirs[strings.TrimSuffix(dir, "/")], base)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if n.Ino != w.ino || n.Ref != blobstore.RefOf(w.content) || n.Size != int64(len(w.content)) || !n.Mtime.Equal(w.mtime) {
			t.Errorf("%s: inode %d ref %s size %d mtime %v, want %d, %s, %d, %v", name, n.Ino, n.Ref, n.Size, n.Mtime,
				w.ino, blobstore.RefOf(w.content), len(w.content), w.mtime)
			continue
		}
		if content := e.read(n.Ref); !bytes.Equal(content, w.content) {
			t.Errorf("%s: read %d bytes, not its %d", name, len(content), len(w.content))
		}
	}
}

func (e *crashEnv) read(ref blobstore.Ref) []byte {
	e.t.Helper()
	rc, err := e.s.Controller().Fetch(context.Background(), ref, e.s.Meta().Ring(), e.volume.ID)
	if err != nil {
		e.t.Fatalf("blob %s: %v", ref, err)
	}
	defer rc.Close()
	content, err := io.ReadAll(rc)
	if err != nil {
		e.t.Fatalf("blob %s: %v", ref, err)
	}
	return content
}
