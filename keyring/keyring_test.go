package keyring

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	kek, err := GenerateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(path)
	if info.Mode().Perm() != 0o600 || info.Size() != KeySize {
		t.Fatalf("key file mode %o size %d; want 0600 and %d bytes", info.Mode().Perm(), info.Size(), KeySize)
	}
	loaded, err := LoadKeyFile(path)
	if err != nil || loaded.ID() != kek.ID() || loaded.Kind() != KindKeyFile {
		t.Fatalf("LoadKeyFile = %v, %v; want the same KEK", loaded, err)
	}
	if _, err := GenerateKeyFile(path); err == nil {
		t.Fatal("GenerateKeyFile overwrote an existing key file")
	}
}

func TestLoadKeyFileRefusals(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		content []byte
		mode    os.FileMode
		want    string
	}{
		{"short", []byte("too short"), 0o600, "not a stofuse key file"},
		{"long", make([]byte, 33), 0o600, "not a stofuse key file"},
		{"open", make([]byte, 32), 0o644, "readable by others"},
	} {
		path := filepath.Join(dir, tc.name)
		os.WriteFile(path, tc.content, tc.mode)
		os.Chmod(path, tc.mode)
		if _, err := LoadKeyFile(path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: LoadKeyFile error %v, want it to say %q", tc.name, err, tc.want)
		}
	}
	if _, err := LoadKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing key file: %v", err)
	}
}

func TestEnvelope(t *testing.T) {
	first, _ := GenerateKeyFile(filepath.Join(t.TempDir(), "a"))
	params, _ := NewKDFParams()
	params.MemoryKiB, params.Time = 64, 1 // fast for the test
	second, err := FromPassphrase([]byte("correct horse"), params)
	if err != nil {
		t.Fatal(err)
	}
	wrong, _ := FromPassphrase([]byte("wrong horse"), params)
	keyID, dek, _ := NewDataKey()
	env, err := Seal(keyID, dek, first)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.AddSlot(dek, second); err != nil {
		t.Fatal(err)
	}
	env.AddSlot(dek, second) // twice: still one slot
	if len(env.Slots) != 2 {
		t.Fatalf("%d slots, want 2", len(env.Slots))
	}
	for _, kek := range []*KEK{first, second} {
		if got, err := env.Open(kek); err != nil || !bytes.Equal(got, dek) {
			t.Fatalf("Open with %s: %v", kek.Kind(), err)
		}
	}
	if _, err := env.Open(wrong); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open with a wrong passphrase: %v, want ErrWrongKey", err)
	}
	// A slot moved to another envelope does not open there.
	other := &Envelope{KeyID: "dek-other", Slots: env.Slots}
	if _, err := other.Open(first); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("a slot moved to another envelope opened: %v", err)
	}
	// A flipped bit in a sealed DEK does not open.
	env.Slots[0].Sealed[3] ^= 1
	if _, err := env.Open(first); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("a damaged slot opened: %v", err)
	}
}

func TestPassphraseNeedsParams(t *testing.T) {
	if _, err := FromPassphrase([]byte("x"), KDFParams{}); err == nil {
		t.Fatal("FromPassphrase accepted empty parameters")
	}
	if _, err := FromPassphrase(nil, KDFParams{Salt: make([]byte, 16), Time: 1, MemoryKiB: 64, Threads: 1}); err == nil {
		t.Fatal("FromPassphrase accepted an empty passphrase")
	}
}

func TestRing(t *testing.T) {
	r := NewRing()
	r.Add("k", []byte("dek"))
	if got, err := r.DataKey("k"); err != nil || string(got) != "dek" {
		t.Fatalf("DataKey = %q, %v", got, err)
	}
	if _, err := r.DataKey("other"); !errors.Is(err, ErrKeyNotInRing) {
		t.Fatalf("DataKey of a missing key: %v", err)
	}
}
