// Command stofuse stores files as content-addressed, encrypted,
// self-verifying blobs, and mounts volumes of them as FUSE filesystems.
//
// Exit codes: 0 success; 1 failure (damage or missing blobs found, a file
// not stored, an I/O error); 2 usage error, or a missing or wrong key; 3
// the metadata directory is damaged; 130 interrupted.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/keyring"
	"github.com/stofuse/stofuse/store"
)

const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitDamaged     = 3
	exitInterrupted = 130
)

// exitError carries the exit code for an error the user should see.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// errFindings: the command ran, and what it found (damage, missing blobs,
// files not stored) was already reported line by line.
var errFindings = &exitError{code: exitFailure, err: errors.New("")}

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if code, ok := forward(args, os.Stdin, stdout, stderr); ok {
		return code // the store is mounted: its daemon ran the command
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runApp(ctx, args, localEnv(os.Stdin, stdout, stderr))
}

// runApp runs a command line in e, here or in a mount daemon for a
// client, and returns its exit code.
func runApp(ctx context.Context, args []string, e *env) int {
	app := newApp(e)
	err := app.RunContext(ctx, flagsFirst(app, args))
	return report(e.stderr, err, ctx.Err() != nil)
}

// report prints err as one line and returns the exit code: the one place
// that decides what an error means to the user.
func report(stderr io.Writer, err error, interrupted bool) int {
	if err == nil {
		return exitOK
	}
	if interrupted {
		fmt.Fprintln(stderr, "stofuse: interrupted")
		return exitInterrupted
	}
	code, msg := classify(err)
	if msg != "" {
		fmt.Fprintf(stderr, "stofuse: %s\n", msg)
	}
	return code
}

// classify maps an error to its exit code and the line the user sees.
func classify(err error) (int, string) {
	var exit *exitError
	var notFound *store.NotFoundError
	switch {
	case errors.As(err, &exit):
		return exit.code, exit.Error()
	case errors.Is(err, store.ErrMetadataDamaged):
		return exitDamaged, err.Error() + "; nothing in it was changed. Restore it from a backup, or move it aside " +
			"and rebuild it from a volume with stofuse recover"
	case errors.Is(err, store.ErrMetadataMissing):
		return exitFailure, err.Error() + ": nothing was changed; rebuild it from a volume with stofuse recover"
	case errors.Is(err, store.ErrNoPassphrase):
		return exitUsage, "wrong key: this store has no passphrase; give --key-file"
	case errors.Is(err, keyring.ErrWrongKey):
		return exitUsage, "wrong key: " + err.Error()
	case errors.As(err, &notFound) && notFound.What == "volume":
		return exitUsage, err.Error() + " (see stofuse volume ls)"
	case errors.Is(err, store.ErrInvalid):
		return exitUsage, err.Error()
	}
	return exitFailure, err.Error()
}

func newApp(e *env) *cli.App {
	app := &cli.App{
		Name:  "stofuse",
		Usage: "an encrypted, content-addressed, self-verifying blob store you can mount",
		Description: "Files become blobs named by the SHA-256 of their content, stored once per volume,\n" +
			"compressed, encrypted and checksummed. The store lives in $STOFUSE_STORE, else\n" +
			"$XDG_DATA_HOME/stofuse, else ~/.local/share/stofuse; the first command creates it.\n\n" +
			"Exit codes: 0 success; 1 failure (damage or missing blobs found, a file not stored,\n" +
			"an I/O error); 2 usage error, or a missing or wrong key; 3 the metadata directory\n" +
			"is damaged; 130 interrupted.",
		Writer:    e.stdout,
		ErrWriter: e.stderr,
		Reader:    e.stdin,
		Metadata:  map[string]any{"env": e},
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "store", EnvVars: []string{"STOFUSE_STORE"}, Usage: "store directory", TakesFile: true},
			&cli.StringFlag{Name: "key-file", EnvVars: []string{"STOFUSE_KEY_FILE"}, Usage: "key file (32 bytes, mode 0600); the passphrase comes from STOFUSE_PASSPHRASE or a prompt", TakesFile: true},
			&cli.BoolFlag{Name: "json", Usage: "machine-readable output (JSON lines on stdout)"},
		},
		Commands: []*cli.Command{
			initCommand(), keyCommand(), volumeCommand(), collectionCommand(),
			putCommand(), catCommand(), statCommand(), releaseCommand(),
			scrubCommand(), replicateCommand(),
			snapshotCommand(), forgetCommand(), gcCommand(), recoverCommand(), syncCommand(),
			mountCommand(), unmountCommand(), statusCommand(),
		},
		// Without a command: help; with an unknown one: a usage error.
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError("no command %q (see stofuse --help)", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		ExitErrHandler:  func(*cli.Context, error) {}, // run() decides exit codes
		OnUsageError:    onUsageError,
		HideHelpCommand: true,
	}
	setUsageErrors(app.Commands)
	return app
}

func onUsageError(c *cli.Context, err error, isSubcommand bool) error {
	return usageError("%v (see %s --help)", err, commandPath(c))
}

// commandPath is the command line that names c's command, as its help
// shows it: "stofuse volume add".
func commandPath(c *cli.Context) string {
	var names []string
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && ctx.Command.Name != "" && ctx.Command.Name != c.App.Name {
			names = append(names, ctx.Command.Name)
		}
	}
	slices.Reverse(names)
	return strings.Join(append([]string{"stofuse"}, names...), " ")
}

// setUsageErrors makes every command's flag errors usage errors (exit 2).
func setUsageErrors(commands []*cli.Command) {
	for _, c := range commands {
		c.OnUsageError = onUsageError
		c.HideHelpCommand = true
		setUsageErrors(c.Subcommands)
	}
}
