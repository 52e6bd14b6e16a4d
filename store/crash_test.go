package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/store"
)

// The crash tests run a workload as the mount runs it (blobs written
// under deferred syncs, then recorded with the tree's commit, or before
// it; group commits now and then), throw away at a chosen step every blob
// write no Sync covered while the metadata keeps every write (the worst
// case a power loss can leave), reopen, and check that the store is as
// the durability contract says.

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
// record), and commits it to f: at two steps of three as the mount does,
// a new blob's record and the file's commit in one transaction
// (CommitWith, CommitNewContent); at the third in two (Commit, then
// CommitContent).
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
	mtime := time.Unix(1_000_000+int64(step), 0)
	size := int64(len(content))
	if step%3 == 0 {
		meta, err := w.Commit(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.s.Meta().CommitContent(ctx, f.ino, ref, size, meta.SizeOnDisk, mtime, nil); err != nil {
			e.t.Fatal(err)
		}
	} else {
		_, err := w.CommitWith(ctx, func(ctx context.Context, meta *diskaccess.BlobMeta, created bool) error {
			if created {
				_, err := e.s.Meta().CommitNewContent(ctx, f.ino, meta, volumeID, size, mtime, nil)
				return err
			}
			_, err := e.s.Meta().CommitContent(ctx, f.ino, ref, size, meta.SizeOnDisk, mtime, nil)
			return err
		})
		if err != nil {
			e.t.Fatal(err)
		}
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
