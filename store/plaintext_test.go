package store_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stofuse/stofuse/store"
)

// TestNoKeyInPlaintext: no key (a data key, the root key, a key file's
// bytes, a passphrase) appears in plaintext in any byte of the store
// directory or of any volume, after keys were added, collections made,
// blobs and snapshots stored and replicated.
func TestNoKeyInPlaintext(t *testing.T) {
	ctx := context.Background()
	s, kek, keyFile := newStoreWithKeyFile(t)
	tree(t, s) // collection photos, with files and a snapshot below
	passphrase := []byte("correct horse battery staple")
	if _, err := s.AddPassphrase(ctx, passphrase); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCollection(ctx, "docs"); err != nil {
		t.Fatal(err)
	}
	second := t.TempDir()
	v2, err := s.AddVolume(ctx, store.LocalVolume("second", second))
	if err != nil {
		t.Fatal(err)
	}
	v1, _ := s.Volume(ctx, store.DefaultVolume)
	if _, err := s.Snapshot(ctx, "photos", v1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Replicate(ctx, v1, v2, store.ReplicateOptions{}); err != nil {
		t.Fatal(err)
	}

	secrets := [][]byte{passphrase}
	collections, _ := s.Collections(ctx)
	for _, c := range collections {
		dek, err := s.Meta().Ring().DataKey(c.KeyID)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, dek)
	}
	export, err := s.Meta().ExportKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rootKey, err := export.Root.Open(kek)
	if err != nil {
		t.Fatal(err)
	}
	rawKEK, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, rootKey, rawKEK)
	dir := s.Dir()
	s.Close()

	scanned := 0
	for _, root := range []string{dir, second} {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			body, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			scanned += len(body)
			for i, secret := range secrets {
				if bytes.Contains(body, secret) {
					t.Errorf("secret %d found in plaintext in %s", i, path)
				}
			}
			return nil
		})
	}
	if _, err := os.Stat(filepath.Join(second, "objects", "keys")); err != nil {
		t.Errorf("the second volume holds no key envelopes: %v", err)
	}
	t.Logf("scanned %d bytes of the store and two volumes for %d secrets", scanned, len(secrets))
}
