package badger

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/keyring"
)

// Collection groups blobs sealed with one data key. Its folder is the
// directory files/<name> of a mount (FolderIno 0: the folder was removed;
// the collection and its key stay, for the blobs sealed with it).
type Collection struct {
	Name      string    `json:"name"`
	KeyID     string    `json:"key_id"`
	Created   time.Time `json:"created"`
	FolderIno uint64    `json:"folder_ino,omitempty"`
	// Copies is the collection's copies policy; nil: the store's
	// (DefaultCopies).
	Copies *CopiesPolicy `json:"copies,omitempty"`
}

// ErrCollectionExists: CreateCollection of a name in use. It is an
// fs.ErrExist.
var ErrCollectionExists = fmt.Errorf("collection already exists: %w", fs.ErrExist)

// CreateCollection makes a collection with a new data key, sealed under the
// root key, and its folder. The store must be unlocked.
func (s *Store) CreateCollection(ctx context.Context, name string) (*Collection, error) {
	if _, err := s.CreateCollectionFolder(ctx, name, 0o755, 0, 0); err != nil {
		return nil, err
	}
	return s.Collection(ctx, name)
}

// CreateCollectionFolder makes the folder files/<name> and returns its
// inode: for a new name with a new collection (as CreateCollection), for a
// collection whose folder was removed with a new folder. An existing
// folder is fs.ErrExist.
func (s *Store) CreateCollectionFolder(ctx context.Context, name string, mode, uid, gid uint32) (*Inode, error) {
	if err := validCollectionName(name); err != nil {
		return nil, err
	}
	folderIno, err := s.newIno()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	folder := &Inode{Ino: folderIno, Kind: KindDir, Mode: mode & 0o7777, UID: uid, GID: gid, Mtime: now, Ctime: now}
	created := false
	err = s.updateDurable(func(txn *badgerdb.Txn) error {
		created = false
		var c Collection
		err := getJSON(txn, stringKey(prefixCollection, name), fmt.Sprintf("collection %q", name), &c)
		switch {
		case err == nil && c.FolderIno != 0:
			return fmt.Errorf("%q: %w", name, ErrCollectionExists)
		case err == nil:
		case isNotExist(err):
			if c, err = s.newCollection(txn, name); err != nil {
				return err
			}
			created = true
		default:
			return err
		}
		c.FolderIno = folderIno
		if err := putInode(txn, folder); err != nil {
			return err
		}
		return putJSON(txn, stringKey(prefixCollection, name), c)
	})
	if err != nil {
		return nil, err
	}
	if created {
		if err := s.notifyKeysChanged(); err != nil {
			return nil, err
		}
	}
	return folder, nil
}

// CollectionFolders lists the collections' folders (files/<name>) by name.
func (s *Store) CollectionFolders(ctx context.Context) ([]Entry, error) {
	all, err := s.Collections(ctx)
	if err != nil {
		return nil, err
	}
	var folders []Entry
	for _, c := range all {
		if c.FolderIno != 0 {
			folders = append(folders, Entry{Name: c.Name, Ino: c.FolderIno, Kind: KindDir})
		}
	}
	return folders, nil
}

// newCollection seals a new data key for a new collection; the caller
// stores the collection record.
func (s *Store) newCollection(txn *badgerdb.Txn, name string) (Collection, error) {
	root, err := s.rootKEK()
	if err != nil {
		return Collection{}, err
	}
	keyID, dek, err := keyring.NewDataKey()
	if err != nil {
		return Collection{}, err
	}
	env, err := keyring.Seal(keyID, dek, root)
	if err != nil {
		return Collection{}, err
	}
	if err := putJSON(txn, stringKey(prefixEnvelope, keyID), env); err != nil {
		return Collection{}, err
	}
	// The key is usable as soon as the transaction commits; adding it to
	// the ring early is harmless if it does not (nothing is sealed with it).
	s.Ring().Add(keyID, dek)
	return Collection{Name: name, KeyID: keyID, Created: time.Now().UTC()}, nil
}

// RemoveCollectionFolder removes the empty folder files/<name>; the
// collection and its key stay. ENOTEMPTY if it holds anything.
func (s *Store) RemoveCollectionFolder(ctx context.Context, name string) error {
	return s.updateDurable(func(txn *badgerdb.Txn) error {
		var c Collection
		if err := getJSON(txn, stringKey(prefixCollection, name), fmt.Sprintf("collection %q", name), &c); err != nil {
			return err
		}
		if c.FolderIno == 0 {
			return fmt.Errorf("collection %q has no folder: %w", name, fs.ErrNotExist)
		}
		if hasEntries(txn, c.FolderIno) {
			return fmt.Errorf("collection %q: %w", name, syscall.ENOTEMPTY)
		}
		if err := txn.Delete(inoKey(prefixInode, c.FolderIno)); err != nil {
			return err
		}
		c.FolderIno = 0
		return putJSON(txn, stringKey(prefixCollection, name), c)
	})
}

func validCollectionName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 255 {
		return fmt.Errorf("%q is not a collection name: %w", name, syscall.EINVAL)
	}
	return nil
}

// Collection returns the named collection, or an fs.ErrNotExist error.
func (s *Store) Collection(ctx context.Context, name string) (*Collection, error) {
	var c Collection
	err := s.view(func(txn *badgerdb.Txn) error {
		return getJSON(txn, stringKey(prefixCollection, name), fmt.Sprintf("collection %q", name), &c)
	})
	return &c, err
}

// Collections lists all collections by name.
func (s *Store) Collections(ctx context.Context) ([]*Collection, error) {
	var all []*Collection
	err := s.view(func(txn *badgerdb.Txn) error {
		return eachJSON(txn, prefixCollection, func(c *Collection) error {
			all = append(all, c)
			return nil
		})
	})
	return all, err
}

// QueryCollectionEncryptionKeyForNewBlobs implements
// diskaccess.MetadataStore.
func (s *Store) QueryCollectionEncryptionKeyForNewBlobs(ctx context.Context, collId string) (string, []byte, error) {
	c, err := s.Collection(ctx, collId)
	if err != nil {
		return "", nil, err
	}
	ring := s.Ring()
	if ring == nil {
		return "", nil, fmt.Errorf("collection %q: %w", collId, diskaccess.ErrKeyNotAvailable)
	}
	key, err := ring.DataKey(c.KeyID)
	if err != nil {
		return "", nil, fmt.Errorf("collection %q: %w (%v)", collId, diskaccess.ErrKeyNotAvailable, err)
	}
	return c.KeyID, key, nil
}

// eachJSON decodes every value under a one-byte prefix into a new T.
func eachJSON[T any](txn *badgerdb.Txn, prefix byte, fn func(*T) error) error {
	it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefix}, PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		body, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		value := new(T)
		if err := json.Unmarshal(body, value); err != nil {
			return fmt.Errorf("record %q is damaged: %w", it.Item().Key(), err)
		}
		if err := fn(value); err != nil {
			return err
		}
	}
	return nil
}
