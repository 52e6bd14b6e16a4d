package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// passphraseFdEnv names a pipe a --background child reads a prompted
// passphrase from, so that it never appears in the environment.
const passphraseFdEnv = "STOFUSE_PASSPHRASE_FD"

// mountInBackground checks the key here (prompting if needed, failing with
// exit code 2 if wrong), then starts this command again detached, and
// returns once the child reports the mount ready, or its error.
func mountInBackground(c *cli.Context) error {
	dir, err := storeDir(c)
	if err != nil {
		return err
	}
	s, err := openHere(c, dir, needKeys)
	if err != nil {
		return err
	}
	passphrase := s.prompted
	settled := settledLines(s.Settled())
	s.Close()

	ready, readyWriter, err := os.Pipe()
	if err != nil {
		return err
	}
	defer ready.Close()
	logPath, err := mountLogPath(dir)
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	keepLogRoom(logFile)
	for _, line := range settled { // said on the terminal too
		fmt.Fprintf(logFile, "stofuse: warning: %s\n", line)
	}
	childLogStart, err := logFile.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.Command(self, os.Args[1:]...)
	child.Env = append(os.Environ(), readyFdEnv+"=3", "STOFUSE_STORE="+dir)
	child.ExtraFiles = []*os.File{readyWriter}
	if passphrase != nil {
		secret, secretWriter, err := os.Pipe()
		if err != nil {
			return err
		}
		defer secret.Close()
		child.ExtraFiles = append(child.ExtraFiles, secret)
		child.Env = append(child.Env, passphraseFdEnv+"=4")
		go func() { secretWriter.Write(passphrase); secretWriter.Close() }()
	}
	child.Stdin, child.Stdout, child.Stderr = nil, logFile, logFile
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		return err
	}
	readyWriter.Close()
	status, _ := bufio.NewReader(ready).ReadString('\n')
	if status == "ready\n" {
		newOutput(c).notef("mounted at %s (pid %d; log in %s)", c.Args().First(), child.Process.Pid, logPath)
		child.Process.Release()
		return nil
	}
	child.Wait()
	msg := strings.TrimPrefix(strings.TrimSpace(status), "error: ")
	if msg == "" {
		msg = childDied(child.ProcessState, logPath, childLogStart)
	}
	return &exitError{code: max(child.ProcessState.ExitCode(), exitFailure), err: errors.New(msg)}
}

// childDied says why a --background child ended without saying whether
// it mounted: the first line of a Go panic or fatal error it logged
// after from, or the signal that killed it.
func childDied(state *os.ProcessState, logPath string, from int64) string {
	why := "the mount process ended before it was ready"
	if status, ok := state.Sys().(syscall.WaitStatus); ok && status.Signaled() {
		why = fmt.Sprintf("the mount process was killed by signal %d (%v) before it was ready", status.Signal(), status.Signal())
	}
	if f, err := os.Open(logPath); err == nil {
		defer f.Close()
		lines := bufio.NewScanner(io.NewSectionReader(f, from, 1<<20))
		for lines.Scan() {
			if line := lines.Text(); strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
				why = "the mount process crashed before it was ready: " + line
				break
			}
		}
	}
	return why + "; see " + logPath
}

var readyOnce sync.Once

// reportReady tells a waiting parent (--background) that the mount is
// ready (err == nil) or why it failed. It does nothing in the foreground.
func reportReady(err error) {
	fd, convErr := strconv.Atoi(os.Getenv(readyFdEnv))
	if convErr != nil {
		return
	}
	readyOnce.Do(func() {
		pipe := os.NewFile(uintptr(fd), "ready")
		if err == nil {
			io.WriteString(pipe, "ready\n")
		} else {
			_, msg := classify(err) // the line the foreground would print
			fmt.Fprintf(pipe, "error: %s\n", strings.ReplaceAll(msg, "\n", " "))
		}
		pipe.Close()
	})
}

// passphraseFromParent reads a passphrase handed down by a --background
// parent, if there is one.
func passphraseFromParent() ([]byte, bool) {
	fd, err := strconv.Atoi(os.Getenv(passphraseFdEnv))
	if err != nil {
		return nil, false
	}
	pipe := os.NewFile(uintptr(fd), "passphrase")
	defer pipe.Close()
	passphrase, err := io.ReadAll(pipe)
	return passphrase, err == nil && len(passphrase) > 0
}

func signalNotify(ch chan os.Signal) {
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
}

// waitForStore waits until no process holds the store's lock (the daemon
// of an unmounted mount closes its store), up to timeout. Badger locks its
// directory with flock.
func waitForStore(storeDir string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		f, err := os.Open(filepath.Join(storeDir, "meta"))
		if err != nil {
			return true // no database: nobody has it open
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		f.Close()
		if err == nil {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
