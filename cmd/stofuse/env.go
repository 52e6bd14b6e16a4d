package main

import (
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/stofuse/stofuse/store"
)

// env is what a command runs with, built once where the command line
// enters: from this process (localEnv), or from a client's request to the
// mount daemon (the daemon's requestEnv). Commands read the user's
// environment, paths, terminal and store only through it, so the same
// code serves both.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	terminal       bool // the user's stderr is a terminal: draw progress bars
	// cwd is the directory relative paths in the arguments are against
	// ("": this process's own).
	cwd string
	// vars are the user's environment variables.
	vars func(name string) string
	// defaultStore is the store used without --store ("": none can be
	// found).
	defaultStore string
	// prompt asks for a passphrase on the user's terminal; nil when there
	// is no terminal to ask on.
	prompt func(what string) ([]byte, error)
	// inherited is a passphrase handed down by a --background parent.
	inherited func() ([]byte, bool)
	// host opens the store, or lends the one it holds open.
	host host
	// onOutput is told of the output a command makes (nil: nobody).
	onOutput func(*output)
}

// host is where a command's store comes from.
type host interface {
	// open opens (or lends) the store in dir for a command, checking a
	// key the user gave; keys says whether the command needs the data
	// keys.
	open(c *cli.Context, dir string, keys keyNeed) (*session, error)
	// mount describes the mount that serves the store, and the other
	// commands it runs (nil: the store is not mounted by this host).
	mount() *mountStatus
	jobs() []jobStatus
	// observer counts what the host's scrubs check (nil: nobody).
	observer() store.Observer
	// fuse is the mount served beside the command, for a garbage
	// collection (nil: the store is not mounted by this host).
	fuse() store.Mount
	// replicator is the mount's background replication (nil: none runs
	// beside the command).
	replicator() *store.Replicator
}

// localEnv is the environment of a command run in this process.
func localEnv(stdin io.Reader, stdout, stderr io.Writer) *env {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, terminal: isTerminal(stderr),
		vars: os.Getenv, defaultStore: defaultStoreDir(os.Getenv), inherited: passphraseFromParent, host: localHost{}}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		e.prompt = func(what string) ([]byte, error) { return promptTerminal(f, stderr, what) }
	}
	return e
}

// envOf is the environment of the command c runs.
func envOf(c *cli.Context) *env { return c.App.Metadata["env"].(*env) }

// path makes a path in a command's arguments usable here: relative paths
// are against the user's working directory.
func (e *env) path(p string) string {
	if e.cwd != "" && p != "-" && p != "" && !filepath.IsAbs(p) {
		return filepath.Join(e.cwd, p)
	}
	return p
}

func (e *env) getenv(name string) string { return e.vars(name) }

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// defaultStoreDir is STOFUSE_STORE, else $XDG_DATA_HOME/stofuse, else
// ~/.local/share/stofuse ("" without a home directory), absolute.
func defaultStoreDir(getenv func(string) string) string {
	dir := getenv("STOFUSE_STORE")
	if dir == "" {
		if xdg := getenv("XDG_DATA_HOME"); xdg != "" {
			dir = filepath.Join(xdg, "stofuse")
		} else if home, err := os.UserHomeDir(); err == nil {
			dir = filepath.Join(home, ".local", "share", "stofuse")
		}
	}
	if abs, err := filepath.Abs(dir); err == nil && dir != "" {
		return abs
	}
	return dir
}
