package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sync"
)

// The control protocol between a command and the mount daemon of its
// store. Badger lets one process open a store, so while a store is mounted
// its daemon runs the commands: the client sends its command line, and the
// daemon runs it in-process against its open store and sends back what
// the command prints and its exit code. The user sees the same output,
// progress and exit codes either way.
//
// The connection carries frames: a type byte, a 4-byte big-endian length,
// and the payload.
const (
	// client -> daemon
	frameRequest  = 'R' // JSON controlRequest, first
	frameStdin    = 'I' // standard input
	frameStdinEOF = 'E'
	frameCancel   = 'C' // Ctrl-C
	// daemon -> client
	frameStdout = 'O'
	frameStderr = 'X'
	frameExit   = 'Q' // 4-byte exit code, last
)

// maxFrame bounds a frame's payload: a peer that claims more is broken.
const maxFrame = 1 << 20

// controlSocket is where a store's daemon listens: STORE/control.sock, or
// in the runtime directory for a store that cannot be written
// (readonly.go).
func controlSocket(storeDir string) string {
	if notWritable(storeDir) != nil {
		return runtimePath(storeDir, ".sock")
	}
	return filepath.Join(storeDir, "control.sock")
}

// controlRequest is what a client asks the daemon to run.
type controlRequest struct {
	Args     []string          `json:"args"` // the command line, without the program name
	Env      map[string]string `json:"env"`  // the client's STOFUSE_* variables
	Cwd      string            `json:"cwd"`  // for relative paths in the arguments
	Terminal bool              `json:"terminal"`
}

// clientEnv are the variables a client passes on: the daemon's own
// environment is not the user's.
var clientEnv = []string{passphraseEnv, newPassphraseEnv, "STOFUSE_KEY_FILE", "STOFUSE_PROGRESS_INTERVAL", gcPauseVar}

func writeFrame(w io.Writer, kind byte, payload []byte) error {
	header := make([]byte, 5, 5+len(payload))
	header[0] = kind
	binary.BigEndian.PutUint32(header[1:], uint32(len(payload)))
	_, err := w.Write(append(header, payload...))
	return err
}

func readFrame(r io.Reader) (byte, []byte, error) {
	var header [5]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return 0, nil, err
	}
	size := binary.BigEndian.Uint32(header[1:])
	if size > maxFrame {
		return 0, nil, fmt.Errorf("control protocol: a frame of %d bytes", size)
	}
	payload := make([]byte, size)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return header[0], payload, nil
}

func writeJSONFrame(w io.Writer, kind byte, value any) error {
	body, err := json.Marshal(value)
	if err != nil {
		return err
	}
	return writeFrame(w, kind, body)
}

// frameWriter sends what is written as frames of one kind; frameWriters
// sharing a connection share its lock.
type frameWriter struct {
	w    io.Writer
	kind byte
	mu   *sync.Mutex
}

func (f *frameWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for rest := p; len(rest) > 0; {
		chunk := rest[:min(len(rest), maxFrame)]
		if err := writeFrame(f.w, f.kind, chunk); err != nil {
			return len(p) - len(rest), err
		}
		rest = rest[len(chunk):]
	}
	return len(p), nil
}
