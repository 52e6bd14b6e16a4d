package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/keyring"
	"github.com/stofuse/stofuse/store"
)

// newStore creates a store in a temp directory, sealed with a new key
// file, and returns it with the key.
func newStore(t testing.TB) (*store.Store, store.Key) {
	s, kek, _ := newStoreWithKeyFile(t)
	return s, store.KEK(kek)
}

// newStoreWithKeyFile is newStore, with the KEK and the path of its key
// file (outside the store).
func newStoreWithKeyFile(t testing.TB) (*store.Store, *keyring.KEK, string) {
	t.Helper()
	dir := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "key")
	kek, err := keyring.GenerateKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Create(context.Background(), dir, func() (*keyring.KEK, *keyring.KDFParams, error) { return kek, nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, kek, keyFile
}

func put(t *testing.T, s *store.Store, volume string, content []byte) blobstore.Ref {
	t.Helper()
	ctx := context.Background()
	v, err := s.Volume(ctx, volume)
	if err != nil {
		t.Fatal(err)
	}
	ref, size, err := s.Put(ctx, v.ID, store.DefaultCollection, bytes.NewReader(content), nil)
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(content)) || ref != blobstore.RefOf(content) {
		t.Fatalf("Put = %s, %d; want %s, %d", ref, size, blobstore.RefOf(content), len(content))
	}
	return ref
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestOpenPutCatStat(t *testing.T) {
	ctx := context.Background()
	s, key := newStore(t)
	content := randomBytes(t, 300_000)
	ref := put(t, s, store.DefaultVolume, content)
	dir := s.Dir()
	s.Close()

	// Reopened without a key: keyless work only.
	s, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Stat(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != int64(len(content)) || len(st.Volumes) != 1 || st.Volumes[0] != store.DefaultVolume || st.Files != 0 {
		t.Errorf("Stat = %+v", st)
	}
	if err := s.Cat(ctx, ref, &bytes.Buffer{}, nil); !errors.Is(err, store.ErrLocked) {
		t.Errorf("Cat without a key: %v, want ErrLocked", err)
	}
	s.Close()

	s, err = store.Open(ctx, dir, store.WithKey(key))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out bytes.Buffer
	if err := s.Cat(ctx, ref, &out, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), content) {
		t.Error("Cat returned other bytes")
	}
	unknown := blobstore.RefOf([]byte("never stored"))
	if err := s.Cat(ctx, unknown, &out, nil); !errors.Is(err, store.ErrNoBlob) {
		t.Errorf("Cat of an unknown ref: %v, want ErrNoBlob", err)
	}
	if _, err := s.Stat(ctx, unknown); !errors.Is(err, store.ErrNoBlob) {
		t.Errorf("Stat of an unknown ref: %v, want ErrNoBlob", err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := store.Open(ctx, t.TempDir()); !errors.Is(err, store.ErrNotCreated) {
		t.Errorf("Open of an empty directory: %v, want ErrNotCreated", err)
	}
	s, _ := newStore(t)
	if _, err := store.Open(ctx, s.Dir()); !errors.Is(err, store.ErrBusy) {
		t.Errorf("Open of a store open elsewhere: %v, want ErrBusy", err)
	}
	other, err := keyring.GenerateKeyFile(filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Dir()
	s.Close()
	if _, err := store.Open(ctx, dir, store.WithKey(store.KEK(other))); !errors.Is(err, keyring.ErrWrongKey) {
		t.Errorf("Open with another key: %v, want ErrWrongKey", err)
	}
	if _, err := store.Open(ctx, dir, store.WithKey(store.Passphrase([]byte("x")))); !errors.Is(err, store.ErrNoPassphrase) {
		t.Errorf("Open with a passphrase: %v, want ErrNoPassphrase", err)
	}
	sealed := false
	seal := func() (*keyring.KEK, *keyring.KDFParams, error) { sealed = true; return other, nil, nil }
	if _, err := store.Create(ctx, dir, seal); !errors.Is(err, store.ErrInvalid) || sealed {
		t.Errorf("Create over a store: %v (seal called: %v), want ErrInvalid before sealing", err, sealed)
	}
}

func TestCheckKeyAndAddPassphrase(t *testing.T) {
	ctx := context.Background()
	s, key := newStore(t)
	if err := s.CheckKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddPassphrase(ctx, []byte("correct horse")); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckKey(ctx, store.Passphrase([]byte("correct horse"))); err != nil {
		t.Errorf("CheckKey of the added passphrase: %v", err)
	}
	if err := s.CheckKey(ctx, store.Passphrase([]byte("wrong horse"))); !errors.Is(err, keyring.ErrWrongKey) {
		t.Errorf("CheckKey of a wrong passphrase: %v, want ErrWrongKey", err)
	}
	keys, err := s.Keys(ctx)
	if err != nil || len(keys) != 2 {
		t.Errorf("Keys = %v, %v; want two", keys, err)
	}
}

// blobFile is where localfs keeps a blob of the default volume.
func blobFile(s *store.Store, ref blobstore.Ref) string {
	hex := ref.String()
	return filepath.Join(s.Dir(), "volumes", store.DefaultVolume, hex[:3], hex)
}

func TestScrubFindsDamageMissingAndOrphans(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	good := put(t, s, store.DefaultVolume, randomBytes(t, 1000))
	damaged := put(t, s, store.DefaultVolume, randomBytes(t, 200_000))
	missing := put(t, s, store.DefaultVolume, randomBytes(t, 1000))
	flipByte(t, blobFile(s, damaged), 300)
	if err := os.Remove(blobFile(s, missing)); err != nil {
		t.Fatal(err)
	}
	orphan := blobstore.RefOf([]byte("orphan"))
	os.MkdirAll(filepath.Dir(blobFile(s, orphan)), 0o700)
	if err := os.WriteFile(blobFile(s, orphan), []byte("not a blob"), 0o600); err != nil {
		t.Fatal(err)
	}

	v, _ := s.Volume(ctx, store.DefaultVolume)
	var found []store.Finding
	summary := s.ScrubVolume(ctx, v, store.ScrubOptions{Found: func(f store.Finding) { found = append(found, f) }})
	if summary.Blobs != 3 || summary.Damaged != 1 || summary.Missing != 1 || summary.Orphans != 1 || !summary.Failed() {
		t.Errorf("summary = %+v", summary)
	}
	kinds := map[blobstore.Ref]store.FindingKind{}
	for _, f := range found {
		kinds[f.Ref] = f.Kind
	}
	want := map[blobstore.Ref]store.FindingKind{damaged: store.Damaged, missing: store.Missing, orphan: store.Orphan}
	for ref, kind := range want {
		if kinds[ref] != kind {
			t.Errorf("finding for %s = %q, want %q (all: %+v)", ref, kinds[ref], kind, found)
		}
	}
	if _, ok := kinds[good]; ok {
		t.Errorf("the intact blob was reported: %+v", found)
	}
	state, err := s.ScrubState(ctx, v.ID)
	if err != nil || state.Finished.IsZero() || len(state.Findings) != 3 {
		t.Errorf("ScrubState = %+v, %v", state, err)
	}
}

func flipByte(t *testing.T, path string, offset int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, offset); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, offset); err != nil {
		t.Fatal(err)
	}
}

// stopAfter cancels a scrub once it has checked n blobs.
type stopAfter struct {
	store.Reporter
	n      int64
	cancel context.CancelFunc
}

func (s *stopAfter) Begin(string, int64, int64) {}
func (s *stopAfter) End()                       {}
func (s *stopAfter) Add(items, _ int64) {
	if s.n -= items; s.n <= 0 {
		s.cancel()
	}
}

func TestScrubResumes(t *testing.T) {
	s, _ := newStore(t)
	for i := 0; i < 10; i++ {
		put(t, s, store.DefaultVolume, randomBytes(t, 100))
	}
	v, _ := s.Volume(context.Background(), store.DefaultVolume)
	ctx, cancel := context.WithCancel(context.Background())
	first := s.ScrubVolume(ctx, v, store.ScrubOptions{Reporter: &stopAfter{n: 4, cancel: cancel}})
	if first.Blobs != 4 {
		t.Fatalf("the interrupted scrub checked %d blobs, want 4", first.Blobs)
	}
	state, err := s.ScrubState(context.Background(), v.ID)
	if err != nil || !state.Interrupted || !state.Finished.IsZero() {
		t.Fatalf("state after the interruption = %+v, %v", state, err)
	}
	var notes []string
	rest := s.ScrubVolume(context.Background(), v, store.ScrubOptions{Resume: true, Reporter: &notesOf{&notes}})
	if rest.Blobs != 10 || rest.Failed() {
		t.Errorf("resumed scrub summary = %+v, want 10 blobs in all", rest)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "resuming the scrub of volume default after 4 blobs") {
		t.Errorf("notes = %q", notes)
	}
}

type notesOf struct{ notes *[]string }

func (n *notesOf) Begin(string, int64, int64) {}
func (n *notesOf) Add(int64, int64)           {}
func (n *notesOf) End()                       {}
func (n *notesOf) Note(msg string)            { *n.notes = append(*n.notes, msg) }
func (n *notesOf) Warn(msg string)            { *n.notes = append(*n.notes, "warning: "+msg) }

func TestReplicateAndCatAroundDamage(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	second, err := s.AddVolume(ctx, store.LocalVolume("second", t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddVolume(ctx, store.LocalVolume("second", t.TempDir())); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("a second volume named second: %v, want ErrInvalid", err)
	}
	content := randomBytes(t, 400_000)
	ref := put(t, s, store.DefaultVolume, content)
	first, _ := s.Volume(ctx, store.DefaultVolume)
	summary, err := s.Replicate(ctx, first, second, store.ReplicateOptions{})
	if err != nil || summary.Copied != 1 || summary.Failed != 0 {
		t.Fatalf("Replicate = %+v, %v", summary, err)
	}
	again, err := s.Replicate(ctx, first, second, store.ReplicateOptions{})
	if err != nil || again.Copied != 0 || again.Present != 1 {
		t.Errorf("a second Replicate = %+v, %v; want nothing copied", again, err)
	}
	if _, err := s.Replicate(ctx, first, first, store.ReplicateOptions{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Replicate to the same volume: %v, want ErrInvalid", err)
	}

	// The default volume's copy is damaged: cat reads on from the second.
	flipByte(t, blobFile(s, ref), 200_000)
	var out bytes.Buffer
	var notes []string
	if err := s.Cat(ctx, ref, &out, &notesOf{&notes}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), content) {
		t.Error("Cat around the damage returned other bytes")
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "reading on from volume second") {
		t.Errorf("notes = %q", notes)
	}
}

func TestVolumeUnavailable(t *testing.T) {
	ctx := context.Background()
	s, key := newStore(t)
	missing := filepath.Join(t.TempDir(), "gone")
	os.Mkdir(missing, 0o700)
	v, err := s.AddVolume(ctx, store.LocalVolume("gone", missing))
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Dir()
	s.Close()
	if err := os.RemoveAll(missing); err != nil {
		t.Fatal(err)
	}
	s, err = store.Open(ctx, dir, store.WithKey(key))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if why := s.Unavailable(v.ID); why == nil || !errors.Is(why, fs.ErrNotExist) {
		t.Errorf("Unavailable = %v, want a not-exist error", why)
	}
	if _, err := s.Volume(ctx, "gone"); err == nil {
		t.Error("Volume of an unavailable volume succeeded")
	}
	var nf *store.NotFoundError
	if _, err := s.Volume(ctx, "nowhere"); !errors.As(err, &nf) || !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Volume of an unknown name: %v, want a NotFoundError", err)
	}
	summary := s.ScrubVolume(ctx, v, store.ScrubOptions{})
	if summary.Failures != 1 {
		t.Errorf("scrub of an unavailable volume: %+v, want one failure", summary)
	}
}
