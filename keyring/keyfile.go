package keyring

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/crypto/argon2"
)

// GenerateKeyFile writes a new key file (32 random bytes, mode 0600) at
// path, which must not exist, and returns its KEK. A missing parent
// directory is created (mode 0700). The file and its directory entry are
// fsynced before it returns.
func GenerateKeyFile(path string) (*KEK, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	var key [KeySize]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	_, err = f.Write(key[:])
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("write key file %s: %w", path, err)
	}
	return newKEK(key, KindKeyFile), nil
}

// LoadKeyFile reads a key file. It must hold exactly 32 bytes and must not
// be readable by group or others, as ssh demands of private keys.
func LoadKeyFile(path string) (*KEK, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is readable by others (mode %04o): run chmod 600 %s", path, info.Mode().Perm(), path)
	}
	var key [KeySize]byte
	n, err := io.ReadFull(f, key[:])
	if err == io.ErrUnexpectedEOF || err == io.EOF || (err == nil && info.Size() != KeySize) {
		return nil, fmt.Errorf("key file %s is not a stofuse key file: it holds %d bytes, a key file holds %d", path, max(int64(n), info.Size()), KeySize)
	}
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	return newKEK(key, KindKeyFile), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// KDFParams are the public argon2id parameters that turn a passphrase into a
// KEK. They are stored in the store; the passphrase never is.
type KDFParams struct {
	Salt      []byte `json:"salt"`
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// NewKDFParams returns argon2id parameters with a new random salt: 3
// passes over 64 MiB with 2 lanes, RFC 9106's second recommended option.
func NewKDFParams() (KDFParams, error) {
	p := KDFParams{Salt: make([]byte, 16), Time: 3, MemoryKiB: 64 << 10, Threads: 2}
	_, err := rand.Read(p.Salt)
	return p, err
}

// FromPassphrase stretches a passphrase into a KEK.
func FromPassphrase(passphrase []byte, p KDFParams) (*KEK, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("empty passphrase")
	}
	if len(p.Salt) < 16 || p.Time == 0 || p.MemoryKiB < 8 || p.Threads == 0 {
		return nil, fmt.Errorf("keyring: argon2id parameters are damaged: %+v", p)
	}
	key := argon2.IDKey(passphrase, p.Salt, p.Time, p.MemoryKiB, p.Threads, KeySize)
	return newKEK([KeySize]byte(key), KindPassphrase), nil
}
