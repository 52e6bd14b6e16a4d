package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/fusefs"
	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/store"
)

var (
	_ fusefs.Tree      = (*badger.Store)(nil)
	_ fusefs.Snapshots = (*store.MountSnapshots)(nil)
	_ store.Mount      = (*fusefs.Root)(nil)
)

// frameCacheBytes bounds the mount's cache of opened frames.
const frameCacheBytes = 32 << 20

// readaheadKiB is the kernel readahead set on a mount (as root):
// test/bench/mount.sh measured 763 MB/s sequential reads at the default
// 128 KiB and 1.3 GB/s at 4 MiB.
const readaheadKiB = 4096

func mountCommand() *cli.Command {
	return &cli.Command{
		Name:      "mount",
		Usage:     "show a volume's blobs as files under MOUNTPOINT/ref/",
		ArgsUsage: "MOUNTPOINT",
		Description: "Mounts the volume as a FUSE filesystem: MOUNTPOINT/ref/<ref> is one file per\n" +
			"blob, read through the verified path (a damaged blob reads as EIO, never as wrong\n" +
			"bytes). Unless --read-only, files copied into ref/ are stored as blobs when they\n" +
			"are closed: under a hex name the content must hash to it (else close fails with\n" +
			"EIO); under any other name the blob appears under its hash, and the name stays\n" +
			"until it is renamed or removed, or the volume is unmounted. Committed blobs cannot\n" +
			"be removed or changed (EPERM).\n\n" +
			"Keys are loaded once, now; a wrong key fails before anything is mounted. Runs in\n" +
			"the foreground until unmounted (SIGINT, SIGTERM or `stofuse unmount MOUNTPOINT`);\n" +
			"--background returns once the mount is ready and logs to STORE/mount.log.\n\n" +
			"The kernel checks every access against the owners and modes shown (as on a local\n" +
			"disk). Only the mount's owner can reach it, unless --allow-other; ref/ is the\n" +
			"owner's alone (mode 0700) either way.\n" +
			"As root it mounts directly; otherwise it needs fusermount3 (Debian: fuse3).",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "read-only", Usage: "mount read-only: every write is EROFS"},
			&cli.BoolFlag{Name: "allow-other", Usage: "let other users reach the mount, as the owners and modes of files/ and snapshots/ allow " +
				"(ref/ stays the mount owner's); as a user other than root, needs user_allow_other in /etc/fuse.conf"},
			&cli.StringFlag{Name: "volume", Usage: "mount this volume only (name or id): ref/ shows its blobs, and writes go to it (default: every volume)"},
			&cli.StringFlag{Name: "write-volume", Value: store.DefaultVolume, Usage: "store what is written through the mount on this volume (name or id)"},
			&cli.StringFlag{Name: "collection", Value: store.DefaultCollection, Usage: "the collection whose key seals files written into the mount"},
			&cli.BoolFlag{Name: "background", Usage: "return once mounted; the mount keeps running"},
			&cli.StringFlag{Name: "metrics", Usage: "serve Prometheus metrics at http://ADDR/metrics (ADDR: host:port, e.g. 127.0.0.1:9101)"},
			&cli.DurationFlag{Name: "snapshot-interval", Value: defaultSnapshotInterval,
				Usage: "snapshot the collections that changed this often, and at unmount (0: never)"},
			&cli.DurationFlag{Name: "commit-interval", Value: defaultCommitInterval,
				Usage: "make closed files survive a power loss within this long (a group commit; fsync(2) and `stofuse sync` commit at once)"},
			&cli.BoolFlag{Name: "sync-on-close", Usage: "commit at every close(2) of a written file, as at fsync (slow: every file costs its own syncs)"},
			&cli.DurationFlag{Name: "scrub-every", Usage: "scrub each volume whose last scrub finished longer ago than this, repairing what it finds, " +
				"going on after a remount where an unmount interrupted it (default: never; e.g. 720h)"},
			&cli.StringFlag{Name: "scrub-rate", Value: defaultScrubRate, Usage: "read at most this many bytes per second in a scheduled scrub (K, M, G: powers of 1024)"},
			&cli.StringFlag{Name: "replicate-rate", Usage: "read at most this many bytes per second when copying blobs below their copies policy (default: no limit)"},
		},
		Action: mount,
	}
}

// replicateRate is --replicate-rate in bytes per second (0: no limit).
func replicateRate(c *cli.Context) (float64, error) {
	if c.String("replicate-rate") == "" {
		return 0, nil
	}
	perSecond, err := store.ParseRate(c.String("replicate-rate"))
	if err != nil {
		return 0, usageError("--replicate-rate: %v", err)
	}
	return perSecond, nil
}

// readyFdEnv names the pipe a --background child reports readiness on.
const readyFdEnv = "STOFUSE_READY_FD"

func mount(c *cli.Context) (err error) {
	// A --background child that fails before it is ready tells its parent.
	defer func() {
		if err != nil {
			reportReady(err)
		}
	}()
	if c.NArg() != 1 {
		return usageError("usage: stofuse mount [--read-only] [--allow-other] [--volume V] [--collection C] [--background] MOUNTPOINT")
	}
	if c.Duration("commit-interval") <= 0 {
		return usageError("--commit-interval must be positive (for a commit at every close: --sync-on-close)")
	}
	if c.Duration("scrub-every") < 0 {
		return usageError("--scrub-every must not be negative")
	}
	if _, err := store.ParseRate(c.String("scrub-rate")); err != nil {
		return usageError("--scrub-rate: %v", err)
	}
	if _, err := replicateRate(c); err != nil {
		return err
	}
	mountpoint, err := checkMountpoint(c.Args().First())
	if err != nil {
		return err
	}
	if err := checkFuse(); err != nil {
		return err
	}
	if c.Bool("allow-other") && os.Geteuid() != 0 && !userAllowOther(fuseConf) {
		return usageError("--allow-other: a user other than root may use it only if %s has a line user_allow_other (as root, add it)", fuseConf)
	}
	if store, err := storeDir(c); err == nil {
		if conn, err := dialDaemon(store); err == nil {
			conn.Close()
			return usageError("store %s is mounted already (one mount per store): use that mount, or unmount it first", store)
		}
	}
	if c.Bool("background") && os.Getenv(readyFdEnv) == "" {
		return mountInBackground(c)
	}
	cache := diskaccess.NewFrameCache(frameCacheBytes)
	dir, err := storeDir(c)
	if err != nil {
		return err
	}
	logger := log.New(c.App.ErrWriter, "stofuse: ", log.LstdFlags)
	healer := store.NewHealer(logger.Printf, !c.Bool("read-only"))
	s, err := openHere(c, dir, needKeys, mountOptions(cache, healer)...)
	if err != nil {
		return err
	}
	defer func() {
		wait := storeCloseWait
		if s.Failed() != nil {
			wait = goneCloseWait // its database can never write its files: do not wait long
		}
		if closeErr := closeWithin(s, wait); closeErr != nil {
			if err != nil {
				s.out.warnf("%v", closeErr)
			} else {
				err = closeErr
			}
		}
	}()
	return serve(c, s, mountpoint, cache, logger, healer)
}

// storeCloseWait bounds how long a mount daemon waits for its store to
// close (Badger's flush of its last memtable: a few seconds at most),
// and goneCloseWait how long once the store's directory is gone
// (vanish.go), where Badger's Close never returns.
const (
	storeCloseWait = 90 * time.Second
	goneCloseWait  = 5 * time.Second
)

// The Go heap's soft limit in a mount daemon (unless GOMEMLIMIT says
// otherwise): daemonMemoryLimit, or the live heap and daemonHeapHeadroom
// when that is more (limitMemory). Badger's compactions allocate in
// bursts, and without a limit the heap grows to twice their size before
// the GC runs; but a fixed limit near the live heap (the inodes of a
// large directory the kernel has looked up: some 700 bytes each) makes
// the GC run almost without pause, and everything the daemon does then
// takes twice as long or more.
const (
	daemonMemoryLimit  = 160 << 20
	daemonHeapHeadroom = 64 << 20
)

// limitMemory sets the daemon's heap limit, and sets it again at the end
// of every collection, from the live heap that collection found.
func limitMemory() {
	debug.SetMemoryLimit(daemonMemoryLimit)
	afterEachCollection(func() bool {
		debug.SetMemoryLimit(max(daemonMemoryLimit, int64(liveHeap())+daemonHeapHeadroom))
		return true
	})
}

func serve(c *cli.Context, s *session, mountpoint string, cache *diskaccess.FrameCache, logger *log.Logger, healer *store.Healer) error {
	ctx := c.Context
	// The daemon runs its clients' commands with their own keys and store
	// settings: its own must not stand in for them (urfave reads flags'
	// variables from the process environment).
	for _, name := range []string{"STOFUSE_KEY_FILE", passphraseEnv, newPassphraseEnv, "STOFUSE_STORE"} {
		os.Unsetenv(name)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		limitMemory()
	}
	only, write := c.IsSet("volume"), c.String("write-volume")
	if only {
		if c.IsSet("write-volume") && write != c.String("volume") {
			return usageError("--volume %s mounts that volume alone, so writes go to it: --write-volume %s is another", c.String("volume"), write)
		}
		write = c.String("volume")
	}
	v, err := s.Volume(ctx, write)
	if err != nil {
		return err
	}
	if _, err := s.Collection(ctx, c.String("collection")); err != nil {
		return err
	}
	meta := s.Meta()
	stopLogRoom := keepingLogRoom(os.Stderr) // when it is mount.log
	defer stopLogRoom()
	meta.SetSpaceLogger(logger.Printf)
	// On a full store the mount comes up all the same, for reading: what
	// these would write waits for the next mount.
	if !c.Bool("read-only") {
		if err := s.WriteKeys(ctx); errors.Is(err, syscall.ENOSPC) {
			s.out.warnf("the keys are not written to the volume now (the next mount does it): %v", err)
		} else if err != nil {
			return err
		}
	}
	if removed, err := meta.RemoveUncommitted(ctx); errors.Is(err, syscall.ENOSPC) {
		s.out.warnf("the files an earlier mount left half-written are not removed now (the next mount does it): %v", err)
	} else if err != nil {
		return err
	} else if removed > 0 {
		s.out.notef("removed %d files that an earlier mount created but never finished writing", removed)
	}
	spoolDir := filepath.Join(s.Dir(), "spool")
	if s.ReadOnly() {
		// A read-only mount spools nothing; statfs of an S3 volume
		// reports this directory's filesystem.
		spoolDir = runtimeDir()
		if err := makeRuntimeDir(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(spoolDir, 0o700); err != nil {
		return err
	}
	var observer *metrics
	if addr := c.String("metrics"); addr != "" {
		if observer, err = startMetrics(addr, v.Label, cache); err != nil {
			return fmt.Errorf("--metrics %s: %w", addr, err)
		}
		defer observer.stop()
	}
	var _ fusefs.ExplicitStores = (*store.MountCatalog)(nil) // what ref/ writes mark
	cfg := fusefs.Config{
		Controller: s.Controller(), Catalog: store.NewMountCatalog(s.Store), Tree: meta, Keys: meta.Ring(),
		Snapshots: store.NewMountSnapshots(s.Store, v.ID), Volume: v.ID, OnlyVolume: only,
		Collection: c.String("collection"), ReadOnly: c.Bool("read-only"), AllowOther: c.Bool("allow-other"),
		SpoolDir: spoolDir, UID: uint32(os.Getuid()), GID: uint32(os.Getgid()),
		SpaceCheck: meta.CheckSpace, // the spool shares the store's filesystem
		FsName:     "stofuse:" + s.Dir(),
		Logger:     logger,
	}
	if observer != nil {
		cfg.Observer = observer
	}
	interval := c.Duration("commit-interval")
	if !c.Bool("read-only") {
		cfg.Commit, cfg.SyncOnClose = s.Sync, c.Bool("sync-on-close")
	}
	root := fusefs.New(cfg)
	opts := root.Options()
	opts.MountOptions.Debug = os.Getenv("STOFUSE_FUSE_DEBUG") != "" // every request, to the log
	server, err := mountKernel(mountpoint, root, opts)
	if err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		if err := fusefs.SetReadahead(mountpoint, readaheadKiB); err != nil {
			s.out.warnf("could not raise the kernel's readahead for %s: %v", mountpoint, err)
		}
	}
	var replicator *store.Replicator
	if !c.Bool("read-only") {
		rate, _ := replicateRate(c) // checked in mount
		replicator = store.NewReplicator(logger.Printf, rate, healer.Report)
	}
	control, err := startDaemon(s, mountpoint, v.Label, only, c.Bool("read-only"), observer, root, replicator)
	if err != nil {
		server.Unmount()
		return err
	}
	// Commands run by the daemon hold the store: stop them before it closes.
	defer control.stop()
	if replicator != nil {
		// Blobs below their copies policy are copied in the background,
		// until the store closes, after the last snapshot (an interrupted
		// copy is made again by the next mount). Not from ctx, which a
		// signal ends before the unmount.
		replicating, stopReplicating := context.WithCancel(context.Background())
		replicated := make(chan struct{})
		go func() {
			defer close(replicated)
			replicator.Run(replicating, s.Store)
		}()
		defer func() { stopReplicating(); <-replicated }()
	}
	// Damaged copies that reads read around are repaired in the
	// background, until the store closes.
	healing, stopHealing := context.WithCancel(ctx)
	healed := make(chan struct{})
	go func() {
		defer close(healed)
		healer.Run(healing, s.Store)
	}()
	defer func() { stopHealing(); <-healed }()
	watch, err := watchStore(s, mountpoint)
	if err != nil {
		server.Unmount()
		return err
	}
	defer watch.Stop()
	what := fmt.Sprintf("every volume (writes go to %q)", v.Label)
	if only {
		what = fmt.Sprintf("volume %q", v.Label)
	}
	s.out.notef("mounted %s at %s%s", what, mountpoint, map[bool]string{true: " (read-only)"}[c.Bool("read-only")])
	reportReady(nil)
	go unmountOnSignal(c, s, server, mountpoint)
	if !c.Bool("read-only") {
		stop := s.commitEvery(interval)
		defer stop() // after the unmount: what the last files left to commit
	}
	if every := c.Duration("scrub-every"); every > 0 {
		rate, _ := store.ParseRate(c.String("scrub-rate"))
		var observed store.Observer
		if observer != nil {
			observed = observer
		}
		stop := s.scrubEvery(every, rate, !c.Bool("read-only"), observed)
		defer stop() // before the store closes: an interrupted scrub keeps its place
	}
	if interval := c.Duration("snapshot-interval"); interval > 0 && !c.Bool("read-only") {
		stop := s.snapshotEvery(interval, v.ID)
		defer stop() // after the unmount: a last snapshot of what changed
	}
	if path := os.Getenv("STOFUSE_CPUPROFILE"); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stop()
	}
	server.Wait()
	if path := os.Getenv("STOFUSE_MEMPROFILE"); path != "" {
		writeHeapProfile(path)
	}
	s.out.notef("unmounted %s", mountpoint)
	if watch.Gone() {
		return fmt.Errorf("store %s went away while %s was mounted: what was written into the mount since then is lost", s.Dir(), mountpoint)
	}
	return nil
}

// unmountOnSignal unmounts when SIGINT or SIGTERM arrives; if the mount is
// busy it says so and tries again at the next signal, detaching it at the
// third.
func unmountOnSignal(c *cli.Context, s *session, server interface{ Unmount() error }, mountpoint string) {
	signals := make(chan os.Signal, 3)
	signalNotify(signals)
	<-c.Context.Done()
	for attempt := 1; ; attempt++ {
		err := server.Unmount()
		if _, mounted := mountSource(mountpoint); err == nil || !mounted {
			return // unmounted (maybe by fusermount3 -u or umount before)
		}
		if attempt >= 3 {
			s.out.warnf("detaching %s while busy: %v", mountpoint, err)
			unix.Unmount(mountpoint, unix.MNT_DETACH)
			return
		}
		s.out.warnf("cannot unmount %s: %v (close what uses it; signal again to retry, a third time to detach)", mountpoint, err)
		<-signals
	}
}

// startCPUProfile profiles the daemon until stop is called (for
// benchmarks: STOFUSE_CPUPROFILE=FILE stofuse mount ...).
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// writeHeapProfile writes the live heap (for benchmarks:
// STOFUSE_MEMPROFILE=FILE stofuse mount ...).
func writeHeapProfile(path string) {
	if f, err := os.Create(path); err == nil {
		pprof.WriteHeapProfile(f)
		f.Close()
	}
}

// checkMountpoint returns the absolute mountpoint, or why it cannot be used.
func checkMountpoint(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	info, err := os.Stat(abs)
	if errors.Is(err, os.ErrNotExist) {
		return "", usageError("mountpoint %s does not exist: create it first", abs)
	}
	if err != nil {
		return "", fmt.Errorf("mountpoint %s: %w", abs, err)
	}
	if !info.IsDir() {
		return "", usageError("mountpoint %s is not a directory", abs)
	}
	if _, mounted := mountSource(abs); mounted {
		return "", usageError("mountpoint %s is busy: something is mounted there already", abs)
	}
	return abs, nil
}

// mountSource reads /proc/self/mountinfo: whether dir is a mount point, and
// the mount's source (for stofuse: "stofuse:STORE").
func mountSource(dir string) (string, bool) {
	body, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	mounted, source := false, ""
	for _, line := range strings.Split(string(body), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 || unescapeMountPath(fields[4]) != dir {
			continue
		}
		mounted = true // the last mount on dir is the visible one
		for i, field := range fields {
			if field == "-" && i+2 < len(fields) {
				source = unescapeMountPath(fields[i+2])
			}
		}
	}
	return source, mounted
}

func unescapeMountPath(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// checkFuse says, in one line, what is missing for a FUSE mount.
func checkFuse() error {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("no /dev/fuse: this system cannot mount FUSE filesystems (load the fuse module with modprobe fuse; in a container, pass /dev/fuse through)")
	}
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("fusermount3"); err != nil {
			return fmt.Errorf("mounting as a normal user needs fusermount3, which is not installed (Debian: apt-get install fuse3)")
		}
	}
	return nil
}

// fuseConf is where fusermount3 reads whether users may mount with
// allow_other.
const fuseConf = "/etc/fuse.conf"

// userAllowOther reports whether the FUSE configuration at path lets users
// other than root mount with allow_other, as fusermount3 reads it: a line
// user_allow_other by itself.
func userAllowOther(path string) bool {
	body, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.TrimSpace(line) == "user_allow_other" {
			return true
		}
	}
	return false
}

func unmountCommand() *cli.Command {
	return &cli.Command{
		Name:      "unmount",
		Aliases:   []string{"umount"},
		Usage:     "unmount a stofuse mount; its daemon then exits",
		ArgsUsage: "MOUNTPOINT",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError("usage: stofuse unmount MOUNTPOINT")
			}
			mountpoint, err := filepath.Abs(c.Args().First())
			if err != nil {
				return err
			}
			if _, mounted := mountSource(mountpoint); !mounted {
				return usageError("%s is not mounted", mountpoint)
			}
			return unmount(mountpoint)
		},
	}
}

// daemonExitWait bounds how long unmount waits for the daemon to let go
// of the store: its last snapshot encodes what changed since the one
// before, which is quick unless much changed.
const daemonExitWait = 2 * time.Minute

func unmount(mountpoint string) error {
	source, _ := mountSource(mountpoint)
	var err error
	if os.Geteuid() == 0 {
		err = unix.Unmount(mountpoint, 0)
	} else {
		out, runErr := exec.Command("fusermount3", "-u", mountpoint).CombinedOutput()
		if runErr != nil {
			err = fmt.Errorf("%v: %s", runErr, strings.TrimSpace(string(out)))
		}
	}
	if errors.Is(err, syscall.EBUSY) {
		return fmt.Errorf("%s is busy: close the files and shells that use it, then try again", mountpoint)
	}
	if err != nil {
		return fmt.Errorf("unmounting %s: %w", mountpoint, err)
	}
	// The daemon notices, takes its last snapshot of what changed, and
	// closes its store; wait for that, so that the next command can open
	// it.
	if store, ok := strings.CutPrefix(source, "stofuse:"); ok && !waitForStore(store, daemonExitWait) {
		return fmt.Errorf("unmounted %s, but its daemon still holds store %s", mountpoint, store)
	}
	return nil
}
