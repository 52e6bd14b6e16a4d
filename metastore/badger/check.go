package badger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	badgerdb "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/badger/v4/y"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// ErrDamaged: the metadata directory is damaged. Open refuses it before
// Badger sees it: Badger trusts its MANIFEST and tables, and meets damage
// in its own goroutines with a panic no caller can recover, or by
// deleting the tables its MANIFEST does not name.
var ErrDamaged = errors.New("the metadata directory is damaged")

// DamagedError says what is damaged.
type DamagedError struct {
	Dir  string
	What string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("the metadata directory %s is damaged: %s", e.Dir, e.What)
}

func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

// checkDir checks, reading only, what Badger would trust when it opens
// dir: a database (any file in dir) has a MANIFEST that replays, every
// table the MANIFEST names is there with a footer whose index checks
// out, and its key registry is not blank. A directory that does not
// exist, or is empty, is a new database.
func checkDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || err == nil && len(entries) == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	damaged := func(format string, args ...any) error {
		return &DamagedError{Dir: dir, What: fmt.Sprintf(format, args...)}
	}
	manifest, err := os.Open(filepath.Join(dir, badgerdb.ManifestFilename))
	if errors.Is(err, fs.ErrNotExist) {
		return damaged("its MANIFEST is missing, but it holds %d files", len(entries))
	}
	if err != nil {
		return err
	}
	defer manifest.Close()
	m, _, err := badgerdb.ReplayManifestFile(manifest, 0, badgerOptions(dir))
	if err != nil {
		return damaged("its MANIFEST does not read back (%v)", err)
	}
	for id := range m.Tables {
		if err := checkTable(table.NewFilename(id, dir)); err != nil {
			return damaged("%v", err)
		}
	}
	for _, e := range entries {
		// A value log shorter than its header is no torn tail (which
		// Badger cuts off after a crash) but damage, which it would
		// rewrite. stofuse's values stay below the value threshold, so
		// a crash leaves no torn value log.
		if info, err := e.Info(); err == nil && filepath.Ext(e.Name()) == ".vlog" && info.Size() < vlogHeaderSize {
			return damaged("the value log %s is cut short (%d bytes)", e.Name(), info.Size())
		}
	}
	return checkKeyRegistry(filepath.Join(dir, badgerdb.KeyRegistryFileName))
}

// vlogHeaderSize is the size of a Badger value log file's header.
const vlogHeaderSize = 20

// checkTable checks a table's footer as Badger reads it when it opens the
// table (table.initIndex): the checksum and index lengths fit the file,
// and the index matches its checksum. It reads the footer and the index
// only.
func checkTable(path string) error {
	name := filepath.Base(path)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("the table %s its MANIFEST names is missing", name)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	size := info.Size()
	cutShort := fmt.Errorf("the table %s is cut short or damaged (its footer does not fit its %d bytes)", name, size)
	pos := size - 4
	checksumLen, err := readU32(f, pos)
	if err != nil || pos-checksumLen < 4 {
		return cutShort
	}
	pos -= checksumLen
	raw := make([]byte, checksumLen)
	var checksum pb.Checksum
	if _, err := f.ReadAt(raw, pos); err != nil || proto.Unmarshal(raw, &checksum) != nil {
		return fmt.Errorf("the table %s has a damaged footer", name)
	}
	pos -= 4
	indexLen, err := readU32(f, pos)
	if err != nil || indexLen > pos {
		return cutShort
	}
	index := make([]byte, indexLen)
	if _, err := f.ReadAt(index, pos-indexLen); err != nil || y.VerifyChecksum(index, &checksum) != nil {
		return fmt.Errorf("the index of the table %s does not match its checksum", name)
	}
	return nil
}

func readU32(f *os.File, off int64) (int64, error) {
	if off < 0 {
		return 0, errors.New("before the start")
	}
	var b [4]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint32(b[:])), nil
}

// checkKeyRegistry refuses a key registry that is all zero bytes (Badger
// says only "Encryption key mismatch").
func checkKeyRegistry(path string) error {
	body, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // Badger makes a new one; it holds no key here
	}
	if err != nil {
		return err
	}
	for _, b := range body {
		if b != 0 {
			return nil
		}
	}
	return &DamagedError{Dir: filepath.Dir(path), What: "its KEYREGISTRY is blank"}
}

// isLocked reports whether another process holds the database's
// directory lock (Badger's flock on the directory).
func isLocked(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}
