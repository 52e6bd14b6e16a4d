package store_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/metastore/snapshot"
	"github.com/stofuse/stofuse/store"
)

// The crash tests run a workload as the mount runs it (blobs written
// under deferred syncs, then recorded, then the tree's commit; group
// commits now and then), throw away at a chosen step every blob write no
// Sync covered while the metadata keeps every write (the worst case a
// power loss can leave), reopen, and check that the store is as the
// durability contract says.

type crashOpKind int

const (
	opCreate  crashOpKind = iota // a new file
	opRewrite                    // new content for an existing file
	opReplace                    // a new file renamed over an existing one (rsync, editors)
	opReuse                      // an existing file gets content some file had (no new blob)
	opSync                       // a group commit
)

type crashOp struct {
	kind    crashOpKind
	file    string // "f03" in the collection's folder, or "d/f04"
	content []byte
}

// crashWorkload is 30 operations, the same every run.
func crashWorkload() []crashOp {
	rng := rand.New(rand.NewPCG(13, 7))
	var ops []crashOp
	var files []string
	var contents [][]byte
	newContent := func() []byte {
		size := rng.IntN(3000)
		if rng.IntN(5) == 0 {
			size = 130_000 + rng.IntN(10_000) // two frames
		}
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.IntN(7)) // compressible
		}
		contents = append(contents, b)
		return b
	}
	for i := range 30 {
		switch r := rng.IntN(100); {
		case i%6 == 5:
			ops = append(ops, crashOp{kind: opSync})
		case len(files) == 0 || r < 35:
			name := fmt.Sprintf("f%02d", len(files))
			if len(files)%2 == 1 {
				name = "d/" + name
			}
			files = append(files, name)
			ops = append(ops, crashOp{kind: opCreate, file: name, content: newContent()})
		case r < 62:
			ops = append(ops, crashOp{kind: opRewrite, file: files[rng.IntN(len(files))], content: newContent()})
		case r < 88:
			ops = append(ops, crashOp{kind: opReplace, file: files[rng.IntN(len(files))], content: newContent()})
		default:
			ops = append(ops, crashOp{kind: opReuse, file: files[rng.IntN(len(files))], content: contents[rng.IntN(len(contents))]})
		}
	}
	return ops
}

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

// crashEnv is a store running the workload on a crashDriver.
type crashEnv struct {
	t      *testing.T
	s      *store.Store
	key    store.Key
	volume *badger.Volume
	driver *crashDriver
	dirs   map[string]uint64     // "" (the collection's folder) and "d"
	files  map[string]*modelFile // by name: the inode there now
	// wroteSinceSync: some blob or content was written since the last
	// Sync (the journal is not empty).
	wroteSinceSync bool
}

func newCrashEnv(t *testing.T) *crashEnv {
	t.Helper()
	ctx := context.Background()
	s, key := newStore(t)
	v, err := s.Volume(ctx, store.DefaultVolume)
	if err != nil {
		t.Fatal(err)
	}
	e := &crashEnv{t: t, s: s, key: key, volume: v, driver: newCrashDriver(t, v.Settings["path"]),
		dirs: map[string]uint64{}, files: map[string]*modelFile{}}
	// The mount's volume, through the crashDriver from now on.
	if err := s.Controller().Unmount(v.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Controller().Mount(ctx, v.ID, v.UUID, e.driver); err != nil {
		t.Fatal(err)
	}
	c, err := s.Collection(ctx, store.DefaultCollection)
	if err != nil {
		t.Fatal(err)
	}
	e.dirs[""] = c.FolderIno
	d, err := s.Meta().Create(ctx, c.FolderIno, "d", &badger.Inode{Kind: badger.KindDir, Mode: 0o755, Mtime: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	e.dirs["d"] = d.Ino
	e.sync()
	return e
}

func (e *crashEnv) sync() {
	e.t.Helper()
	if err := e.s.Sync(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	for _, f := range e.files {
		f.synced, f.syncedMtime, f.existed, f.touched, f.replaced = f.current, f.currentMtime, true, false, nil
	}
	e.wroteSinceSync = false
}

// write stores content as the mount does, and commits it to file name.
func (e *crashEnv) write(step int, name string, content []byte) {
	e.t.Helper()
	e.writeOn(e.volume.ID, step, name, content)
}

func (e *crashEnv) writeOn(volumeID, step int, name string, content []byte) {
	e.t.Helper()
	f := e.files[name]
	if f == nil {
		f = e.create(name)
		e.files[name] = f
	}
	e.commit(volumeID, step, f, content)
}

// replace writes content as a new file and renames it over name.
func (e *crashEnv) replace(step int, name string, content []byte) {
	e.t.Helper()
	dir, base := path.Split(name)
	temp := e.create(dir + "." + base + ".tmp")
	e.commit(e.volume.ID, step, temp, content)
	parent := e.dirs[strings.TrimSuffix(dir, "/")]
	if _, err := e.s.Meta().Rename(context.Background(), parent, "."+base+".tmp", parent, base, false); err != nil {
		e.t.Fatal(err)
	}
	temp.replaced = e.files[name]
	e.files[name] = temp
}

func (e *crashEnv) create(name string) *modelFile {
	e.t.Helper()
	dir, base := path.Split(name)
	n, err := e.s.Meta().Create(context.Background(), e.dirs[strings.TrimSuffix(dir, "/")], base,
		&badger.Inode{Kind: badger.KindFile, Mode: 0o644, Mtime: time.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
	return &modelFile{ino: n.Ino}
}

// commit stores content as the mount does (deferred syncs, then the
// record), and commits it to f.
func (e *crashEnv) commit(volumeID, step int, f *modelFile, content []byte) {
	e.t.Helper()
	ctx := blobstore.WithDeferredSync(context.Background())
	ref := blobstore.RefOf(content)
	w, err := e.s.Controller().NewBlobWriter(ctx, volumeID, store.DefaultCollection, ref, diskaccess.WriteOptions{MaybeCompressible: true})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := w.Write(content); err != nil {
		e.t.Fatal(err)
	}
	meta, err := w.Commit(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	mtime := time.Unix(1_000_000+int64(step), 0)
	if _, err := e.s.Meta().CommitContent(ctx, f.ino, ref, int64(len(content)), meta.SizeOnDisk, mtime, nil); err != nil {
		e.t.Fatal(err)
	}
	f.current, f.currentMtime, f.touched = content, mtime, true
	e.wroteSinceSync = true
}

func (e *crashEnv) run(ops []crashOp) {
	for step, op := range ops {
		switch op.kind {
		case opSync:
			e.sync()
		case opReplace:
			e.replace(step, op.file, op.content)
		default:
			e.write(step, op.file, op.content)
		}
	}
}

// crash throws away what no Sync covered (spare: but a third of it) and
// closes the store as a crash leaves it; it returns the blobs lost.
func (e *crashEnv) crash(spare bool) map[blobstore.Ref]bool {
	e.t.Helper()
	lost := map[blobstore.Ref]bool{}
	for _, ref := range e.driver.crash(e.t, spare) {
		lost[ref] = true
	}
	if err := store.CloseWithoutSyncForTest(e.s); err != nil {
		e.t.Fatal(err)
	}
	return lost
}

func (e *crashEnv) reopen() {
	e.t.Helper()
	s, err := store.Open(context.Background(), e.s.Dir(), store.WithKey(e.key))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	e.s = s
}

func TestCrashAtEveryStep(t *testing.T) {
	ops := crashWorkload()
	for step := 0; step <= len(ops); step++ {
		t.Run(fmt.Sprintf("after-%02d", step), func(t *testing.T) {
			t.Parallel()
			e := newCrashEnv(t)
			e.run(ops[:step])
			lost := e.crash(step%2 == 1) // the worst case, or some blobs reached the disk
			e.reopen()
			e.checkAfterCrash(lost)
			if step%5 == 0 {
				// Settled, and closed cleanly: nothing is left to check.
				if err := e.s.Close(); err != nil {
					t.Fatal(err)
				}
				e.reopen()
				if r := e.s.Settled(); !r.Clean {
					t.Errorf("open after a clean close: %+v", r)
				}
			}
		})
	}
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

// The converse of a crash: the metadata goes back to what it was at a
// Sync (restored from a copy) while the volume keeps every blob written
// since. The store opens with the files as they were then, and the newer
// blobs are only orphans, which a scrub counts.
func TestMetadataBackToALastSync(t *testing.T) {
	ops := crashWorkload()
	for _, at := range []struct {
		name     string
		step     int  // where the copy of the metadata is made
		syncedAt bool // after a Sync (its journal empty); else with a journal to settle
	}{{"at-a-sync", 12, true}, {"after-writes", 15, false}} {
		t.Run(at.name, func(t *testing.T) {
			t.Parallel()
			e := newCrashEnv(t)
			e.run(ops[:at.step])
			if at.syncedAt {
				e.sync()
			}
			// Copy the metadata as a crash leaves it (the volumes keep
			// everything: nothing is thrown away), and go on.
			if err := store.CloseWithoutSyncForTest(e.s); err != nil {
				t.Fatal(err)
			}
			meta := filepath.Join(e.s.Dir(), "meta")
			saved := filepath.Join(t.TempDir(), "meta")
			if err := os.CopyFS(saved, os.DirFS(meta)); err != nil {
				t.Fatal(err)
			}
			then := map[string]wantFile{}
			for name, f := range e.files {
				then[name] = wantFile{ino: f.ino, content: f.current, mtime: f.currentMtime}
			}
			known := e.storedBlobs()
			e.reopen()
			e.remount()
			e.run(ops[at.step:])
			e.sync()
			newer := len(e.storedBlobs()) - len(known)
			if err := e.s.Close(); err != nil {
				t.Fatal(err)
			}
			if newer == 0 {
				t.Fatal("the workload stored no blob after the copy")
			}

			if err := os.RemoveAll(meta); err != nil {
				t.Fatal(err)
			}
			if err := os.CopyFS(meta, os.DirFS(saved)); err != nil {
				t.Fatal(err)
			}
			e.reopen()
			if r := e.s.Settled(); r.Clean != at.syncedAt || len(r.Lost)+len(r.Reverted)+len(r.Removed) != 0 {
				t.Errorf("settle report %+v, want clean %v and nothing lost", r, at.syncedAt)
			}
			e.checkTree(then)
			sum := e.s.ScrubVolume(context.Background(), e.volume, store.ScrubOptions{})
			if sum.Orphans != newer || sum.Damaged+sum.Missing+sum.Failures != 0 {
				t.Errorf("scrub: %+v, want %d orphans and nothing else", sum, newer)
			}
		})
	}
}

// remount puts the reopened store's volume back on a crashDriver.
func (e *crashEnv) remount() {
	e.t.Helper()
	ctx := context.Background()
	e.driver = newCrashDriver(e.t, e.volume.Settings["path"])
	if err := e.s.Controller().Unmount(e.volume.ID); err != nil {
		e.t.Fatal(err)
	}
	if err := e.s.Controller().Mount(ctx, e.volume.ID, e.volume.UUID, e.driver); err != nil {
		e.t.Fatal(err)
	}
}

// storedBlobs lists the blobs the volume holds.
func (e *crashEnv) storedBlobs() map[blobstore.Ref]bool {
	e.t.Helper()
	all := map[blobstore.Ref]bool{}
	err := e.driver.List(context.Background(), func(info blobstore.BlobInfo) error {
		all[info.Ref] = true
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return all
}

// A volume that is not there at open keeps its journal entries, and the
// files that use its blobs, for an open that can check them.
func TestSettleWaitsForAnUnavailableVolume(t *testing.T) {
	ctx := context.Background()
	e := newCrashEnv(t)
	second := filepath.Join(t.TempDir(), "second")
	v, err := e.s.AddVolume(ctx, store.LocalVolume("second", second))
	if err != nil {
		t.Fatal(err)
	}
	e.write(0, "f00", []byte("on the first volume"))
	e.writeOn(v.ID, 1, "f01", []byte("on the second volume"))
	e.crash(false)
	if err := os.Rename(second, second+".away"); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	r := e.s.Settled()
	if len(r.Unchecked) != 1 || r.Unchecked[0].Volume != "second" || !slices.Equal(r.UncheckedFiles, []string{"default/f01"}) ||
		!slices.Equal(r.Removed, []string{"default/f00"}) {
		t.Fatalf("settle report with the second volume away: %+v", r)
	}
	if _, err := e.s.Meta().Lookup(ctx, e.dirs[""], "f01"); err != nil {
		t.Errorf("the file on the second volume: %v", err)
	}
	if err := e.s.Sync(ctx); err != nil { // this Open's commits leave them
		t.Fatal(err)
	}
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(second+".away", second); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	if r := e.s.Settled(); r.Clean || r.Checked != 1 || r.Kept != 1 || len(r.Unchecked)+len(r.Lost) != 0 {
		t.Errorf("settle report with the second volume back: %+v", r)
	}
	if r := e.s.Settled(); !strings.Contains(r.String(), "1 files kept") {
		t.Errorf("report line: %s", r.String())
	}
}

// A snapshot taken after settling sees the files put back and removed:
// settling moves the stamps of the directories it changes, so the trees
// an earlier snapshot cached for them are not reused.
func TestSnapshotAfterSettle(t *testing.T) {
	ctx := context.Background()
	e := newCrashEnv(t)
	snaps, err := e.s.AddVolume(ctx, store.LocalVolume("snapshots", filepath.Join(t.TempDir(), "snapshots")))
	if err != nil {
		t.Fatal(err)
	}
	ops := crashWorkload()
	e.run(ops[:16]) // a Sync at 11, then files replaced, made, rewritten
	// On the other volume, whose Sync leaves this one's blobs pending.
	before, err := e.s.Snapshot(ctx, store.DefaultCollection, snaps.ID)
	if err != nil {
		t.Fatal(err)
	}
	lost := e.crash(false)
	e.reopen()
	want, reverted, removed, _ := e.expected(lost)
	if len(reverted) == 0 || len(removed) == 0 {
		t.Fatalf("the workload left nothing to put back (%v) or remove (%v)", reverted, removed)
	}
	after, err := e.s.Snapshot(ctx, store.DefaultCollection, snaps.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Unchanged || after.Root == before.Root {
		t.Fatalf("the snapshot after settling: %+v", after)
	}
	got := map[string]blobstore.Ref{}
	err = snapshot.Walk(ctx, e.s.LoadTree, after.Root, func(path string, entry snapshot.Entry) error {
		if entry.Kind == snapshot.KindFile {
			got[path] = entry.Ref
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("the snapshot holds %d files, want %d", len(got), len(want))
	}
	for name, w := range want {
		if got[name] != blobstore.RefOf(w.content) {
			t.Errorf("%s in the snapshot: %s, want %s", name, got[name], blobstore.RefOf(w.content))
		}
	}
}
