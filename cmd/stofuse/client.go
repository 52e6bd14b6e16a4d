package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// localCommands run in the calling process even while the store is
// mounted: they do not open the store, or they are the mount itself.
var localCommands = []string{"mount", "unmount", "umount", "help", "h"}

// forward runs the command through the store's mount daemon, if one is
// running, and returns its exit code; ok is false when there is no daemon
// to ask (the command then runs here).
func forward(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int, ok bool) {
	command, store := commandAndStore(args[1:])
	if command == "" || slices.Contains(localCommands, command) || command == "key" && slices.Contains(args, "generate") || wantsHelp(args) {
		return 0, false
	}
	conn, err := dialDaemon(store)
	if err != nil {
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			fmt.Fprintf(stderr, "stofuse: store %s is mounted by another user's daemon; only its owner can use it while it is mounted\n", store)
			return exitFailure, true
		}
		return 0, false // no daemon (or a stale socket): open the store here
	}
	defer conn.Close()
	return runRemote(conn, args[1:], stdin, stdout, stderr), true
}

func runRemote(conn net.Conn, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cwd, _ := os.Getwd()
	req := controlRequest{Args: args, Env: map[string]string{}, Cwd: cwd, Terminal: isTerminal(stderr)}
	for _, name := range clientEnv {
		if value, ok := os.LookupEnv(name); ok {
			req.Env[name] = value
		}
	}
	if err := writeJSONFrame(conn, frameRequest, req); err != nil {
		// The daemon may have refused the connection at once: its answer
		// says why.
		return receive(conn, stdout, stderr)
	}
	sendMu := new(sync.Mutex)
	if slices.Contains(args, "-") {
		go sendStdin(conn, sendMu, stdin)
	}
	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(interrupts)
	go func() {
		for range interrupts {
			sendMu.Lock()
			writeFrame(conn, frameCancel, nil)
			sendMu.Unlock()
		}
	}()
	return receive(conn, stdout, stderr)
}

// receive copies the daemon's output until its exit frame.
func receive(conn net.Conn, stdout, stderr io.Writer) int {
	for {
		kind, payload, err := readFrame(conn)
		if err != nil {
			fmt.Fprintf(stderr, "stofuse: the mount daemon went away (%v)\n", err)
			return exitFailure
		}
		switch kind {
		case frameStdout:
			stdout.Write(payload)
		case frameStderr:
			stderr.Write(payload)
		case frameExit:
			if len(payload) != 4 {
				return exitFailure
			}
			return int(binary.BigEndian.Uint32(payload))
		}
	}
}

func sendStdin(conn net.Conn, mu *sync.Mutex, stdin io.Reader) {
	buf := make([]byte, 1<<16)
	for {
		n, err := stdin.Read(buf)
		if n > 0 {
			mu.Lock()
			werr := writeFrame(conn, frameStdin, buf[:n])
			mu.Unlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			mu.Lock()
			writeFrame(conn, frameStdinEOF, nil)
			mu.Unlock()
			return
		}
	}
}

// commandAndStore finds, without running the app, the command a command
// line runs and the store it uses (--store, STOFUSE_STORE, or the default).
func commandAndStore(args []string) (command, store string) {
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--store" && i+1 < len(args):
			store = args[i+1]
			i++
		case strings.HasPrefix(arg, "--store="):
			store = strings.TrimPrefix(arg, "--store=")
		case arg == "--key-file" && i+1 < len(args):
			i++
		case strings.HasPrefix(arg, "-"):
		case command == "":
			command = arg
		}
	}
	if store == "" {
		store = defaultStoreDir(os.Getenv)
	}
	if abs, err := filepath.Abs(store); err == nil {
		store = abs
	}
	return command, store
}

func wantsHelp(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool { return a == "--help" || a == "-h" })
}
