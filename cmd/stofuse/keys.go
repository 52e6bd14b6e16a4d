package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/stofuse/stofuse/keyring"
	"github.com/stofuse/stofuse/store"
)

const (
	passphraseEnv    = "STOFUSE_PASSPHRASE"
	newPassphraseEnv = "STOFUSE_NEW_PASSPHRASE"
)

func keyGiven(c *cli.Context) bool {
	return keyFileFlag(c) != "" || envOf(c).getenv(passphraseEnv) != ""
}

// keyFileFlag is --key-file, or the user's STOFUSE_KEY_FILE, as a path
// that can be opened here.
func keyFileFlag(c *cli.Context) string {
	path := c.String("key-file")
	if path == "" {
		path = envOf(c).getenv("STOFUSE_KEY_FILE")
	}
	return envOf(c).path(path)
}

// findKey finds the key to unlock an existing store with: --key-file,
// STOFUSE_PASSPHRASE, a passphrase handed down by a --background parent,
// the key file inside the store, or a passphrase prompt on a terminal.
func (s *session) findKey(c *cli.Context, dir string) (store.Key, error) {
	e := envOf(c)
	if path := keyFileFlag(c); path != "" {
		return loadKeyFile(path)
	}
	if passphrase := e.getenv(passphraseEnv); passphrase != "" {
		return store.Passphrase([]byte(passphrase)), nil
	}
	if e.inherited != nil {
		if passphrase, ok := e.inherited(); ok {
			return store.Passphrase(passphrase), nil
		}
	}
	inside := store.KeyFileInsidePath(dir)
	if _, err := os.Stat(inside); err == nil {
		return loadKeyFile(inside)
	}
	if e.prompt != nil {
		passphrase, err := e.prompt("passphrase for " + dir)
		if err != nil {
			return store.Key{}, err
		}
		s.prompted = passphrase
		return store.Passphrase(passphrase), nil
	}
	return store.Key{}, usageError("no key: give --key-file (or STOFUSE_KEY_FILE) or STOFUSE_PASSPHRASE")
}

// loadKeyFile loads a key file; one that cannot be used is a usage error.
func loadKeyFile(path string) (store.Key, error) {
	kek, err := keyring.LoadKeyFile(path)
	if err != nil {
		return store.Key{}, &exitError{code: exitUsage, err: err}
	}
	return store.KEK(kek), nil
}

// newPassphrase is a new passphrase: from env, or asked twice on a
// terminal.
func newPassphrase(c *cli.Context, env, what string) ([]byte, error) {
	e := envOf(c)
	if v := e.getenv(env); v != "" {
		return []byte(v), nil
	}
	if e.prompt == nil {
		return nil, usageError("no %s: set %s or run on a terminal", what, env)
	}
	first, err := e.prompt(what)
	if err != nil {
		return nil, err
	}
	second, err := e.prompt("repeat " + what)
	if err != nil {
		return nil, err
	}
	if string(first) != string(second) {
		return nil, usageError("the passphrases do not match")
	}
	return first, nil
}

// promptTerminal asks for a passphrase on the terminal tty, without echo.
func promptTerminal(tty *os.File, stderr io.Writer, what string) ([]byte, error) {
	fmt.Fprintf(stderr, "%s: ", what)
	passphrase, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(stderr)
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
			kind := keyring.Kind("")
			if c.Bool("passphrase") {
				kind = keyring.KindPassphrase
			}
			s := &session{out: newOutput(c)}
			if err := s.create(c, dir, kind, nil); err != nil {
				return err
			}
			return s.Close()
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
					infos, err := s.Keys(c.Context)
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
	newFile, newPass := envOf(c).path(c.String("new-key-file")), c.Bool("new-passphrase")
	if newFile == "" == !newPass {
		return usageError("key add needs exactly one of --new-key-file and --new-passphrase")
	}
	s, err := openSession(c, needKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	var kek *keyring.KEK
	if newFile != "" {
		kek, err = keyring.LoadKeyFile(newFile)
		if errors.Is(err, fs.ErrNotExist) {
			kek, err = keyring.GenerateKeyFile(newFile)
		}
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		err = s.AddKey(c.Context, kek)
	} else {
		passphrase, perr := newPassphrase(c, newPassphraseEnv, "new passphrase")
		if perr != nil {
			return perr
		}
		kek, err = s.AddPassphrase(c.Context, passphrase)
	}
	if err != nil {
		return err
	}
	s.out.result(map[string]any{"fingerprint": kek.ID(), "kind": kek.Kind()}, "added %s %s", kek.Kind(), kek.ID())
	return nil
}
