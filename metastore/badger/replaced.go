package badger

import (
	"encoding/binary"
	"fmt"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/stofuse/stofuse/blobstore"
)

// A file is often rewritten as a new file renamed over it (rsync, editors,
// anything that wants the old or the new content and never a mix). If the
// new file's content is lost to a power loss, Settle removes the new file,
// and the file it replaced, durable all along, would be gone with it. So a
// rename of a file whose content is journaled over another file journals
// the file it replaces too:
//
//	j r <moving ino u64 BE> <replaced ino u64 BE>  generation u64 BE |
//	    directory u64 BE | name length 1 | name | the replaced inode's record
//
// and Settle, removing the moving file, puts the replaced one back under
// its name. Commit removes the entry once the moving file's content entry
// is gone (its content durable).
const journalReplaced = 'r'

func journalReplacedKey(moving, replaced uint64) []byte {
	key := binary.BigEndian.AppendUint64([]byte{prefixJournal, journalReplaced}, moving)
	return binary.BigEndian.AppendUint64(key, replaced)
}

// ReplacedFile is a journal entry: file Moving, whose content may not be
// durable, was renamed over Replaced, named Name in directory Dir.
type ReplacedFile struct {
	Moving     uint64
	Generation uint64
	Dir        uint64
	Name       string
	Replaced   *Inode
}

func encodeReplaced(r ReplacedFile) []byte {
	b := binary.BigEndian.AppendUint64(nil, r.Generation)
	b = binary.BigEndian.AppendUint64(b, r.Dir)
	b = append(b, byte(len(r.Name)))
	b = append(b, r.Name...)
	return append(b, encodeInode(r.Replaced)...)
}

func decodeReplaced(key, b []byte) (ReplacedFile, error) {
	bad := fmt.Errorf("journal entry of a replaced file %x: %w", key, errBadRecord)
	if len(key) != 2+8+8 || len(b) < 8+8+1 || len(b) < 17+int(b[16]) {
		return ReplacedFile{}, bad
	}
	r := ReplacedFile{Moving: binary.BigEndian.Uint64(key[2:10]), Generation: binary.BigEndian.Uint64(b),
		Dir: binary.BigEndian.Uint64(b[8:16]), Name: string(b[17 : 17+int(b[16])])}
	replaced, err := decodeInode(binary.BigEndian.Uint64(key[10:18]), b[17+int(b[16]):])
	if err != nil || r.Name == "" {
		return ReplacedFile{}, bad
	}
	r.Replaced = replaced
	return r, nil
}

// journalReplacedBy records, in txn, that moving replaces target (named
// name in dir) if moving's content is journaled and target is a committed
// file: what Settle would otherwise lose with it. The files target itself
// replaced (rsync twice in a commit interval) pass to moving, with their
// older generations: Settle tries the newest first.
//
// It reports whether it journaled target: its xattrs (a keys) then stay,
// for Settle to put back with it, until the entry goes (dropReplacedFile).
func (s *Store) journalReplacedBy(txn *badgerdb.Txn, moving uint64, dir uint64, name string, target *Inode) (bool, error) {
	if target.Kind != KindFile || !target.Committed {
		return false, nil
	}
	if pending, err := exists(txn, journalContentKey(moving)); err != nil || !pending {
		return false, err
	}
	inherited, err := replacedBy(txn, target.Ino)
	if err != nil {
		return false, err
	}
	for _, r := range inherited {
		if err := txn.Delete(journalReplacedKey(r.Moving, r.Replaced.Ino)); err != nil {
			return false, err
		}
		r.Moving = moving
		if err := txn.Set(journalReplacedKey(moving, r.Replaced.Ino), encodeReplaced(r)); err != nil {
			return false, err
		}
	}
	r := ReplacedFile{Moving: moving, Generation: s.journal.generation.Load(), Dir: dir, Name: name, Replaced: target}
	return true, txn.Set(journalReplacedKey(moving, target.Ino), encodeReplaced(r))
}

// dropReplacedFile removes, in txn, the journal entry of replaced file r,
// and r's xattrs unless r was put back (its inode exists again).
func dropReplacedFile(txn *badgerdb.Txn, r ReplacedFile) error {
	if err := txn.Delete(journalReplacedKey(r.Moving, r.Replaced.Ino)); err != nil {
		return err
	}
	if back, err := exists(txn, inoKey(prefixInode, r.Replaced.Ino)); err != nil || back {
		return err
	}
	return deleteXattrs(txn, r.Replaced)
}

// replacedBy returns the replaced-file entries of moving.
func replacedBy(txn *badgerdb.Txn, moving uint64) ([]ReplacedFile, error) {
	prefix := binary.BigEndian.AppendUint64([]byte{prefixJournal, journalReplaced}, moving)
	it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix, PrefetchValues: true})
	defer it.Close()
	var entries []ReplacedFile
	for it.Rewind(); it.Valid(); it.Next() {
		value, err := it.Item().ValueCopy(nil)
		if err != nil {
			return nil, err
		}
		r, err := decodeReplaced(it.Item().KeyCopy(nil), value)
		if err != nil {
			return nil, err
		}
		entries = append(entries, r)
	}
	return entries, nil
}

// restorable returns the replaced file of r as it can come back: with
// its content if that is recorded, else with the content its own journal
// entry (in contents) says survived; nil if none did.
func restorable(txn *badgerdb.Txn, r ReplacedFile, contents map[uint64]PendingContent, unchecked map[blobstore.Ref]bool) (*Inode, error) {
	if alive, err := getInode(txn, r.Replaced.Ino); err == nil {
		return alive, nil // a file with other names: its name comes back, to it as it is now
	} else if !isNotExist(err) {
		return nil, err
	}
	n := *r.Replaced
	if found, err := exists(txn, blobKey(n.Ref)); err != nil || found && !unchecked[n.Ref] {
		return &n, err
	}
	entry, ok := contents[n.Ino]
	if !ok {
		return nil, nil
	}
	c, ok, err := survivingContent(txn, entry, unchecked)
	if err != nil || !ok {
		return nil, err
	}
	n.Ref, n.Size, n.StoredSize, n.Mtime = c.Ref, c.Size, c.StoredSize, c.Mtime
	return &n, nil
}

// restoreReplaced puts back, in txn, each file of restore (not nil) under
// its name in entries (restore[i] is entries[i]'s), where the name is
// free; paths[i] names it. It returns the paths of those restored.
func (s *Store) restoreReplaced(txn *badgerdb.Txn, entries []ReplacedFile, restore []*Inode, paths []string) ([]string, error) {
	var restored []string
	for i, r := range entries {
		if restore[i] == nil {
			continue
		}
		if ok, err := s.canRestore(txn, r.Dir, r.Name, restore[i]); err != nil || !ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		if err := s.restoreFile(txn, r.Dir, r.Name, restore[i]); err != nil {
			return nil, err
		}
		restored = append(restored, paths[i])
	}
	return restored, nil
}

func (s *Store) canRestore(txn *badgerdb.Txn, dir uint64, name string, n *Inode) (bool, error) {
	if err := s.checkDir(txn, dir); err != nil {
		return false, nil // gone since
	}
	if taken, err := exists(txn, entryKey(dir, name)); err != nil || taken {
		return false, err
	}
	alive, err := getInode(txn, n.Ino)
	switch {
	case isNotExist(err):
		return true, nil
	case err != nil:
		return false, err
	}
	// A file that kept other names takes this one back, if it may.
	if alive.Kind != KindFile || alive.Links() >= MaxLinks {
		return false, nil
	}
	parent, err := parentOf(txn, alive.Ino)
	if err != nil {
		return false, err
	}
	return sameCollection(txn, dir, parent) == nil, nil
}

// restoreFile writes a replaced file back, named name in dir, as Create
// and CommitContent would have; a file that lives on under other names
// gets the name back as a link.
func (s *Store) restoreFile(txn *badgerdb.Txn, dir uint64, name string, n *Inode) error {
	if alive, err := getInode(txn, n.Ino); err == nil {
		return s.addName(txn, alive, dir, name)
	} else if !isNotExist(err) {
		return err
	}
	n.Ctime = time.Now()
	if err := putInode(txn, n); err != nil {
		return err
	}
	if err := txn.Set(refUseKey(n.Ref, n.Ino), nil); err != nil {
		return err
	}
	return s.link(txn, dir, Entry{Name: name, Ino: n.Ino, Kind: KindFile})
}

// replacedKeyMoving returns the moving inode of a replaced-file key.
func replacedKeyMoving(key []byte) (uint64, bool) {
	if len(key) != 2+8+8 || key[1] != journalReplaced {
		return 0, false
	}
	return binary.BigEndian.Uint64(key[2:10]), true
}

// dropReplaced removes the replaced-file entries of keys whose generation
// is in [from, to] and whose moving file has no content entry left (its
// content is durable): after the other entries, so that it sees their
// removal.
func (s *Store) dropReplaced(keys [][]byte, from, to uint64) error {
	for start := 0; start < len(keys); start += journalBatch {
		batch := keys[start:min(start+journalBatch, len(keys))]
		err := s.updateHousekeeping(func(txn *badgerdb.Txn) error {
			for _, key := range batch {
				moving, _ := replacedKeyMoving(key)
				if pending, err := exists(txn, journalContentKey(moving)); err != nil || pending {
					if err != nil {
						return err
					}
					continue
				}
				value, err := getCopy(txn, key, "journal entry")
				if isNotExist(err) {
					continue
				}
				if err != nil {
					return err
				}
				if gen, err := decodeGeneration(value); err != nil || gen < from || gen > to {
					continue
				}
				r, err := decodeReplaced(key, value)
				if err != nil {
					return err
				}
				if err := dropReplacedFile(txn, r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
