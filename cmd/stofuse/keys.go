package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/stofuse/stofuse/keyring"
)

const (
	passphraseEnv    = "STOFUSE_PASSPHRASE"
	newPassphraseEnv = "STOFUSE_NEW_PASSPHRASE"
)

func keyGiven(c *cli.Context) bool {
	return keyFileFlag(c) != "" || getenv(c, passphraseEnv) != ""
}

// keyFileFlag is --key-file, or STOFUSE_KEY_FILE (the client's, for a
// command run by a daemon), as a path the daemon can open.
func keyFileFlag(c *cli.Context) string {
	path := c.String("key-file")
	if r := remoteOf(c); r != nil && !c.IsSet("key-file") {
		path = getenv(c, "STOFUSE_KEY_FILE")
	}
	return clientPath(c, path)
}

// findKEK finds the KEK to unlock an existing store with: --key-file,
// STOFUSE_PASSPHRASE, the key file inside the store, or a passphrase
// prompt on a terminal.
func (s *session) findKEK(c *cli.Context) (*keyring.KEK, error) {
	if path := keyFileFlag(c); path != "" {
		kek, err := keyring.LoadKeyFile(path)
		if err != nil {
			return nil, &exitError{code: exitUsage, err: err}
		}
		return kek, nil
	}
	if passphrase := getenv(c, passphraseEnv); passphrase != "" {
		return s.passphraseKEK(c, []byte(passphrase))
	}
	if passphrase, ok := passphraseFromParent(); ok {
		return s.passphraseKEK(c, passphrase)
	}
	inside := filepath.Join(s.dir, autoKeyFile)
	if _, err := os.Stat(inside); err == nil {
		kek, err := keyring.LoadKeyFile(inside)
		if err != nil {
			return nil, &exitError{code: exitUsage, err: err}
		}
		return kek, nil
	}
	if remoteOf(c) == nil && term.IsTerminal(int(os.Stdin.Fd())) {
		passphrase, err := prompt("passphrase for " + s.dir)
		if err != nil {
			return nil, err
		}
		s.prompted = passphrase
		return s.passphraseKEK(c, passphrase)
	}
	return nil, usageError("no key: give --key-file (or STOFUSE_KEY_FILE) or STOFUSE_PASSPHRASE")
}

func (s *session) passphraseKEK(c *cli.Context, passphrase []byte) (*keyring.KEK, error) {
	params, err := s.meta.KDFParams(c.Context)
	if err != nil {
		return nil, err
	}
	if params == nil {
		return nil, usageError("wrong key: this store has no passphrase; give --key-file")
	}
	kek, err := keyring.FromPassphrase(passphrase, *params)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	return kek, nil
}

// newPassphraseKEK makes a KEK from a new passphrase (from
// STOFUSE_PASSPHRASE, or asked twice on a terminal) with new argon2id
// parameters.
func newPassphraseKEK(c *cli.Context, what string) (*keyring.KEK, *keyring.KDFParams, error) {
	passphrase, err := newPassphrase(c, passphraseEnv, what)
	if err != nil {
		return nil, nil, err
	}
	params, err := keyring.NewKDFParams()
	if err != nil {
		return nil, nil, err
	}
	kek, err := keyring.FromPassphrase(passphrase, params)
	return kek, &params, err
}

func newPassphrase(c *cli.Context, env, what string) ([]byte, error) {
	if v := getenv(c, env); v != "" {
		return []byte(v), nil
	}
	if remoteOf(c) != nil || !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil, usageError("no %s: set %s or run on a terminal", what, env)
	}
	first, err := prompt(what)
	if err != nil {
		return nil, err
	}
	second, err := prompt("repeat " + what)
	if err != nil {
		return nil, err
	}
	if string(first) != string(second) {
		return nil, usageError("the passphrases do not match")
	}
	return first, nil
}

func prompt(what string) ([]byte, error) {
	fmt.Fprintf(os.Stderr, "%s: ", what)
	passphrase, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return nil, err
	}
	if len(passphrase) == 0 {
		return nil, usageError("empty passphrase")
	}
	return passphrase, nil
}

func initCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "create the store, sealed with a key file or a passphrase",
		Description: "Creates the store directory with its metadata, a default volume and a default\n" +
			"collection. With --key-file, the key file is used (and created if missing). With\n" +
			"--passphrase, the passphrase comes from STOFUSE_PASSPHRASE or is asked twice.\n" +
			"With neither, a key file is created inside the store (see the warning it prints).\n" +
			"Any other command creates the store the same way when it does not exist yet.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "passphrase", Usage: "seal the store with a passphrase instead of a key file"},
		},
		Action: func(c *cli.Context) error {
			dir, err := storeDir(c)
			if err != nil {
				return err
			}
			meta, err := openMeta(dir)
			if err != nil {
				return err
			}
			defer meta.Close()
			if done, err := meta.IsInitialized(c.Context); err != nil || done {
				if err == nil {
					err = usageError("store %s already exists", dir)
				}
				return err
			}
			s := &session{dir: dir, meta: meta, out: newOutput(c)}
			kind := keyring.Kind("")
			if c.Bool("passphrase") {
				kind = keyring.KindPassphrase
			}
			return s.create(c, kind)
		},
	}
}

func keyCommand() *cli.Command {
	return &cli.Command{
		Name:  "key",
		Usage: "manage the keys that open the store",
		Subcommands: []*cli.Command{
			{
				Name:      "generate",
				Usage:     "write a new key file (32 random bytes, mode 0600)",
				ArgsUsage: "PATH",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usageError("key generate needs one PATH")
					}
					kek, err := keyring.GenerateKeyFile(c.Args().First())
					if errors.Is(err, fs.ErrExist) {
						return usageError("%s exists; a key file is never overwritten", c.Args().First())
					}
					if err != nil {
						return err
					}
					newOutput(c).result(map[string]any{"path": c.Args().First(), "fingerprint": kek.ID()},
						"%s  %s", kek.ID(), c.Args().First())
					return nil
				},
			},
			{
				Name:  "add",
				Usage: "let another key file or passphrase open the store",
				Description: "Adds a slot for a new KEK to the store's root envelope (which seals every\n" +
					"collection's data key). Needs a key that already opens the store (--key-file or\n" +
					"STOFUSE_PASSPHRASE). The new passphrase comes from STOFUSE_NEW_PASSPHRASE or a prompt.",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "new-key-file", Usage: "the key file to add (created if missing)", TakesFile: true},
					&cli.BoolFlag{Name: "new-passphrase", Usage: "add a passphrase"},
				},
				Action: keyAdd,
			},
			{
				Name:  "ls",
				Usage: "list the fingerprints of the keys that open the store",
				Action: func(c *cli.Context) error {
					s, err := openSession(c, noKeys)
					if err != nil {
						return err
					}
					defer s.Close()
					infos, err := s.meta.KEKs(c.Context)
					if err != nil {
						return err
					}
					for _, info := range infos {
						s.out.result(info, "%s  %s", info.ID, info.Kind)
					}
					return nil
				},
			},
		},
	}
}

func keyAdd(c *cli.Context) error {
	newFile, newPass := clientPath(c, c.String("new-key-file")), c.Bool("new-passphrase")
	if newFile == "" == !newPass {
		return usageError("key add needs exactly one of --new-key-file and --new-passphrase")
	}
	s, err := openSession(c, needKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	var kek *keyring.KEK
	var kdf *keyring.KDFParams
	if newFile != "" {
		kek, err = keyring.LoadKeyFile(newFile)
		if errors.Is(err, fs.ErrNotExist) {
			kek, err = keyring.GenerateKeyFile(newFile)
		}
	} else {
		kek, kdf, err = s.newPassphraseForStore(c)
	}
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if err := s.meta.AddKEK(c.Context, kek, kdf); err != nil {
		return err
	}
	s.out.result(map[string]any{"fingerprint": kek.ID(), "kind": kek.Kind()}, "added %s %s", kek.Kind(), kek.ID())
	return nil
}

// newPassphraseForStore makes a KEK from a new passphrase, with the store's
// argon2id parameters if it has them (one set per store).
func (s *session) newPassphraseForStore(c *cli.Context) (*keyring.KEK, *keyring.KDFParams, error) {
	params, err := s.meta.KDFParams(c.Context)
	if err != nil {
		return nil, nil, err
	}
	passphrase, err := newPassphrase(c, newPassphraseEnv, "new passphrase")
	if err != nil {
		return nil, nil, err
	}
	if params == nil {
		fresh, err := keyring.NewKDFParams()
		if err != nil {
			return nil, nil, err
		}
		params = &fresh
	}
	kek, err := keyring.FromPassphrase(passphrase, *params)
	return kek, params, err
}
