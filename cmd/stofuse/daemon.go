package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/stofuse/stofuse/store"
)

// daemon is a mount's control server: it runs the commands of clients
// (see control.go) against the mount's open store, one goroutine each.
type daemon struct {
	session    *session
	mountpoint string
	volume     string // the write volume
	onlyVolume bool   // the mount shows that volume alone
	readOnly   bool
	started    time.Time
	owner      int               // the uid allowed to connect (root may too)
	metrics    *metrics          // nil without --metrics
	fuse       store.Mount       // the mount, for the garbage collections it runs
	replicator *store.Replicator // the background replication (nil: a read-only mount's)

	listener *net.UnixListener
	ctx      context.Context // cancelled when the daemon stops
	cancel   context.CancelFunc
	running  sync.WaitGroup // connections being served

	mu      sync.Mutex // guards jobs, nextJob, conns and closing
	jobs    map[int]*job
	nextJob int
	conns   map[*net.UnixConn]bool // connections being served
	closing bool                   // stop has begun: no new connections
}

// job is a command the daemon is running for a client.
type job struct {
	id      int
	args    []string
	started time.Time
	out     *output // set once the command makes its output
}

// startDaemon listens on the store's control socket: mode 0600, and every
// connection's peer credentials are checked, so only the owner (or root)
// can run commands with the mount's keys.
// The socket lives in the store directory, which is the owner's alone
// (0700), or for a store that cannot be written in the runtime directory
// (also 0700), and is made 0600 as soon as it exists.
func startDaemon(s *session, mountpoint, volume string, onlyVolume, readOnly bool, m *metrics, fuse store.Mount, replicator *store.Replicator) (*daemon, error) {
	path := controlSocket(s.Dir())
	if s.ReadOnly() {
		if err := makeRuntimeDir(); err != nil {
			return nil, err
		}
	}
	if conn, err := net.Dial("unix", path); err == nil {
		conn.Close()
		return nil, fmt.Errorf("another daemon serves %s", path)
	}
	os.Remove(path) // a stale socket of a daemon that died
	listener, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		listener.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{session: s, mountpoint: mountpoint, volume: volume, onlyVolume: onlyVolume, readOnly: readOnly, started: time.Now(),
		owner: os.Getuid(), metrics: m, fuse: fuse, replicator: replicator, listener: listener, ctx: ctx, cancel: cancel,
		jobs: map[int]*job{}, conns: map[*net.UnixConn]bool{}}
	go d.accept()
	return d, nil
}

// stop refuses new clients, interrupts running commands, cuts the
// connections (a command blocked on its client gives up), and waits for
// the commands to end, so that the store can be closed.
func (d *daemon) stop() {
	d.mu.Lock()
	d.closing = true
	for conn := range d.conns {
		conn.Close()
	}
	d.mu.Unlock()
	d.listener.Close()
	d.cancel()
	d.running.Wait()
	os.Remove(d.listener.Addr().String())
}

func (d *daemon) accept() {
	for {
		conn, err := d.listener.AcceptUnix()
		if err != nil {
			return
		}
		d.mu.Lock()
		if d.closing {
			d.mu.Unlock()
			conn.Close()
			return
		}
		d.conns[conn] = true
		d.running.Add(1)
		d.mu.Unlock()
		go func() {
			defer d.running.Done()
			defer func() {
				d.mu.Lock()
				delete(d.conns, conn)
				d.mu.Unlock()
				conn.Close()
			}()
			d.serve(conn)
		}()
	}
}

// peerUID is the uid of the process at the other end.
func peerUID(conn *net.UnixConn) (int, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *unix.Ucred
	var credErr error
	raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if credErr != nil {
		return -1, credErr
	}
	return int(cred.Uid), nil
}

func (d *daemon) serve(conn *net.UnixConn) {
	var sendMu sync.Mutex
	stdout := &frameWriter{w: conn, kind: frameStdout, mu: &sendMu}
	stderr := &frameWriter{w: conn, kind: frameStderr, mu: &sendMu}
	exit := func(code int) {
		sendMu.Lock()
		defer sendMu.Unlock()
		writeFrame(conn, frameExit, binary.BigEndian.AppendUint32(nil, uint32(code)))
	}
	if uid, err := peerUID(conn); err != nil || uid != d.owner && uid != 0 {
		fmt.Fprintf(stderr, "stofuse: the mount daemon of %s runs commands only for its owner (uid %d), not for uid %d\n", d.session.Dir(), d.owner, uid)
		exit(exitUsage)
		return
	}
	conn.SetReadDeadline(time.Now().Add(requestTimeout))
	kind, body, err := readFrame(conn)
	var req controlRequest
	if err != nil || kind != frameRequest || json.Unmarshal(body, &req) != nil {
		return
	}
	conn.SetReadDeadline(time.Time{})
	ctx, cancel := context.WithCancel(d.ctx)
	defer cancel()
	stdin := newStdinQueue()
	go readClient(conn, stdin, cancel)
	defer stdin.closeWithError(errors.New("the command has ended"))
	j := d.addJob(req.Args)
	defer d.removeJob(j)
	code := runApp(ctx, append([]string{"stofuse"}, req.Args...), d.requestEnv(req, j, stdin, stdout, stderr))
	exit(code)
}

// requestTimeout bounds how long a client may take to send its request.
const requestTimeout = 10 * time.Second

// readClient queues the client's standard input for the command, and
// cancels the command when the client asks or goes away. It never waits
// for the command to read, so a Ctrl-C is seen at once.
func readClient(conn net.Conn, stdin *stdinQueue, cancel context.CancelFunc) {
	for {
		kind, payload, err := readFrame(conn)
		switch {
		case err != nil:
			stdin.closeWithError(errors.New("the client went away"))
			cancel()
			return
		case kind == frameStdin:
			stdin.push(payload)
		case kind == frameStdinEOF:
			stdin.closeWithError(io.EOF)
		case kind == frameCancel:
			cancel()
			stdin.closeWithError(context.Canceled) // a command reading it stops too
		}
	}
}

// stdinQueue is a command's standard input, as the client sends it.
// Nothing bounds it but the client, which sends its own standard input
// (a put of it spools it to disk as fast as it comes).
type stdinQueue struct {
	mu     sync.Mutex // guards chunks and err
	cond   *sync.Cond
	chunks [][]byte
	err    error // io.EOF once the client's input ended
}

func newStdinQueue() *stdinQueue {
	q := &stdinQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *stdinQueue) push(b []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err == nil {
		q.chunks = append(q.chunks, b)
		q.cond.Broadcast()
	}
}

func (q *stdinQueue) closeWithError(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err == nil {
		q.err = err
		q.cond.Broadcast()
	}
}

func (q *stdinQueue) Read(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.chunks) == 0 && q.err == nil {
		q.cond.Wait()
	}
	if len(q.chunks) == 0 {
		return 0, q.err
	}
	n := copy(p, q.chunks[0])
	if q.chunks[0] = q.chunks[0][n:]; len(q.chunks[0]) == 0 {
		q.chunks = q.chunks[1:]
	}
	return n, nil
}

func (d *daemon) addJob(args []string) *job {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nextJob++
	j := &job{id: d.nextJob, args: args, started: time.Now()}
	d.jobs[j.id] = j
	return j
}

func (d *daemon) removeJob(j *job) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.jobs, j.id)
}

// runningJobs lists the commands running now, oldest first.
func (d *daemon) runningJobs() []*job {
	d.mu.Lock()
	defer d.mu.Unlock()
	var jobs []*job
	for _, j := range d.jobs {
		jobs = append(jobs, j)
	}
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].id < jobs[b].id })
	return jobs
}

// requestEnv is the environment of a client's command: the client's
// variables, working directory, terminal and standard streams, and the
// daemon's open store.
func (d *daemon) requestEnv(req controlRequest, j *job, stdin io.Reader, stdout, stderr io.Writer) *env {
	return &env{
		stdin: stdin, stdout: stdout, stderr: stderr,
		terminal:     req.Terminal, // the user's terminal, at the other end
		cwd:          req.Cwd,
		vars:         func(name string) string { return req.Env[name] },
		defaultStore: d.session.Dir(),
		host:         &daemonHost{daemon: d, job: j},
		onOutput: func(o *output) {
			d.mu.Lock()
			j.out = o
			d.mu.Unlock()
		},
	}
}

// daemonHost lends the daemon's open store to the command of one client.
type daemonHost struct {
	daemon *daemon
	job    *job // the client's command
}

// open lends the store. A key the client gave is still checked: a wrong
// one fails, as it would without a daemon.
func (h *daemonHost) open(c *cli.Context, dir string, keys keyNeed) (*session, error) {
	s := &session{Store: h.daemon.session.Store, out: newOutput(c), lent: true}
	if keyGiven(c) {
		key, err := s.findKey(c, dir)
		if err != nil {
			return nil, err
		}
		if err := s.CheckKey(c.Context, key); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (h *daemonHost) mount() *mountStatus {
	d := h.daemon
	return &mountStatus{Mountpoint: d.mountpoint, Volume: d.volume, OnlyVolume: d.onlyVolume, ReadOnly: d.readOnly, PID: os.Getpid(), Since: d.started}
}

// jobs lists the other commands the daemon runs now, oldest first.
func (h *daemonHost) jobs() []jobStatus {
	var jobs []jobStatus
	for _, j := range h.daemon.runningJobs() {
		if j != h.job {
			jobs = append(jobs, jobStatus{Command: "stofuse " + strings.Join(j.args, " "), Started: j.started, Progress: j.progressLine(), args: j.args})
		}
	}
	return jobs
}

func (h *daemonHost) replicator() *store.Replicator { return h.daemon.replicator }

func (h *daemonHost) observer() store.Observer {
	if h.daemon.metrics == nil {
		return nil
	}
	return h.daemon.metrics
}

// progressLine describes how far a job's long-running work is.
func (j *job) progressLine() string {
	if j.out == nil {
		return "starting"
	}
	if p := j.out.currentProgress(); p != nil {
		return p.line()
	}
	return "running since " + j.started.Format(time.RFC3339)
}
