package badger

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	badgerdb "github.com/dgraph-io/badger/v4"
)

// Volume is a registered volume: where its blobs live and how many.
type Volume struct {
	ID    int    `json:"id"`
	UUID  string `json:"uuid"`
	Label string `json:"label"`
	// Driver names the blobstore driver ("localfs"); Settings are its
	// settings (localfs: "path"). Secrets are never stored here.
	Driver   string            `json:"driver"`
	Settings map[string]string `json:"settings"`
	// BlobCount and Bytes (stored bytes) come from the blob index.
	BlobCount int64 `json:"blob_count"`
	Bytes     int64 `json:"bytes"`
}

// ErrVolumeExists: AddVolume of a label in use.
var ErrVolumeExists = errors.New("volume already exists")

// AddVolume registers a volume and assigns its id (from 1).
func (s *Store) AddVolume(ctx context.Context, v Volume) (*Volume, error) {
	if v.Label == "" || v.UUID == "" || v.Driver == "" {
		return nil, fmt.Errorf("volume needs a label, a UUID and a driver: %+v", v)
	}
	err := s.updateDurable(func(txn *badgerdb.Txn) error {
		all, err := allVolumes(txn)
		if err != nil {
			return err
		}
		next := 1
		for _, existing := range all {
			if existing.Label == v.Label {
				return fmt.Errorf("%q: %w", v.Label, ErrVolumeExists)
			}
			next = max(next, existing.ID+1)
		}
		v.ID, v.BlobCount, v.Bytes = next, 0, 0
		return putJSON(txn, volumeIDKey(prefixVolume, v.ID), v)
	})
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// Volumes lists every volume by id, with its blob count and bytes.
func (s *Store) Volumes(ctx context.Context) ([]*Volume, error) {
	var all []*Volume
	err := s.view(func(txn *badgerdb.Txn) (err error) {
		all, err = allVolumes(txn)
		return err
	})
	return all, err
}

func allVolumes(txn *badgerdb.Txn) ([]*Volume, error) {
	var all []*Volume
	err := eachJSON(txn, prefixVolume, func(v *Volume) error {
		var err error
		v.BlobCount, v.Bytes, err = volumeCounts(txn, v.ID)
		all = append(all, v)
		return err
	})
	return all, err
}

// Volume returns the volume with the given label or decimal id, or an
// fs.ErrNotExist error.
func (s *Store) Volume(ctx context.Context, labelOrID string) (*Volume, error) {
	all, err := s.Volumes(ctx)
	if err != nil {
		return nil, err
	}
	for _, v := range all {
		if v.Label == labelOrID || fmt.Sprint(v.ID) == labelOrID {
			return v, nil
		}
	}
	return nil, fmt.Errorf("volume %q: %w", labelOrID, fs.ErrNotExist)
}

// VolumeByID returns the volume with the given id, or an fs.ErrNotExist
// error.
func (s *Store) VolumeByID(ctx context.Context, id int) (*Volume, error) {
	var v Volume
	err := s.view(func(txn *badgerdb.Txn) error {
		if err := getJSON(txn, volumeIDKey(prefixVolume, id), fmt.Sprintf("volume %d", id), &v); err != nil {
			return err
		}
		var err error
		v.BlobCount, v.Bytes, err = volumeCounts(txn, id)
		return err
	})
	return &v, err
}

// VolumeIDs lists the ids of the registered volumes.
func (s *Store) VolumeIDs(ctx context.Context) ([]int, error) {
	var ids []int
	err := s.view(func(txn *badgerdb.Txn) error {
		return eachJSON(txn, prefixVolume, func(v *Volume) error {
			ids = append(ids, v.ID)
			return nil
		})
	})
	return ids, err
}

// VolumeName returns a volume's label, or "#ID" if it is not registered.
func (s *Store) VolumeName(ctx context.Context, id int) string {
	if v, err := s.VolumeByID(ctx, id); err == nil {
		return v.Label
	}
	return fmt.Sprintf("#%d", id)
}
