package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/uuid"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/blobstore/localfs"
	"github.com/stofuse/stofuse/blobstore/s3"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
)

// LocalVolume describes a new volume in the local directory dir.
func LocalVolume(label, dir string) badger.Volume {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return badger.Volume{Label: label, Driver: "localfs", Settings: map[string]string{"path": dir}}
}

// S3Volume describes a new volume in an S3 bucket (prefix may be empty;
// region empty: ask the server). Credentials are never part of it.
func S3Volume(label, endpoint, bucket, prefix, region string) badger.Volume {
	return badger.Volume{Label: label, Driver: "s3", Settings: map[string]string{
		"endpoint": endpoint, "bucket": bucket, "prefix": prefix, "region": region}}
}

// AddVolume initializes a new volume, registers it and mounts it. A
// volume that already holds a descriptor (of this store or another) is
// refused, and so is a label in use (both ErrInvalid). A local volume's
// directory must be empty or missing (it is created then), outside the
// store directory and every other local volume, and hold no volume (see
// checkLocalDir); a refused one is left as it was. If it was
// registered but cannot be mounted, the error says why, as Unavailable
// does from then on.
func (s *Store) AddVolume(ctx context.Context, v badger.Volume) (*badger.Volume, error) {
	return s.addVolume(ctx, v, "")
}

// addVolume is AddVolume; ownDir is the one directory inside the store
// that may become a local volume (Create's default volume), or "".
func (s *Store) addVolume(ctx context.Context, v badger.Volume, ownDir string) (*badger.Volume, error) {
	if _, err := s.meta.Volume(ctx, v.Label); err == nil {
		return nil, invalidf("there is a volume %q already", v.Label)
	}
	if v.Driver == "localfs" {
		if err := s.makeLocalDir(ctx, v.Settings["path"], ownDir); err != nil {
			return nil, err
		}
	}
	driver, err := openDriver(ctx, &v)
	if err != nil {
		return nil, err
	}
	s.guardSpace(driver)
	v.UUID = uuid.NewString()
	if err := s.ctl.Initialize(ctx, v.UUID, driver); err != nil {
		if errors.Is(err, diskaccess.ErrVolumeAlreadyInitialized) {
			what := "directory"
			if v.Driver == "s3" {
				what = "bucket prefix"
			}
			return nil, invalidf("%s already holds a stofuse volume (%v); choose an empty %s", Where(&v), err, what)
		}
		return nil, err
	}
	added, err := s.meta.AddVolume(ctx, v)
	if err != nil {
		// Leave the volume as it was, so that adding it can be retried.
		driver.RemoveObject(ctx, diskaccess.VolumeDescriptorName)
		return nil, err
	}
	// Usable at once, also by a running mount's daemon, and recoverable
	// from the start.
	why := s.mountVolume(ctx, added)
	s.unavailable.set(added.ID, why)
	if why == nil {
		if err := s.WriteKeys(ctx); err != nil {
			return added, err
		}
	}
	return added, nil
}

// Where says where a volume lives, for messages and listings.
func Where(v *badger.Volume) string {
	if v.Driver == "s3" {
		return strings.TrimSuffix(v.Settings["endpoint"], "/") + "/" + v.Settings["bucket"] + "/" + v.Settings["prefix"]
	}
	return v.Settings["path"]
}

// openDriver returns the driver of a volume. S3 credentials come from the
// S3 driver's standard chain (the AWS variables, the shared credentials
// file), every time: they are never stored.
func openDriver(ctx context.Context, v *badger.Volume) (blobstore.Driver, error) {
	switch v.Driver {
	case "localfs":
		store, err := localfs.Open(v.Settings["path"])
		if err != nil {
			return nil, invalidf("%w (create the directory first)", err)
		}
		return store, nil
	case "s3":
		creds, err := s3.CredentialsFromEnv()
		if err != nil {
			return nil, fmt.Errorf("volume %q: %w", v.Label, err)
		}
		cfg := s3.Config{Endpoint: v.Settings["endpoint"], Bucket: v.Settings["bucket"],
			Prefix: v.Settings["prefix"], Region: v.Settings["region"]}
		return s3.New(ctx, cfg.WithCredentials(creds))
	}
	return nil, fmt.Errorf("volume %q: unknown driver %q", v.Label, v.Driver)
}

// mountVolumes mounts every registered volume it can; why a volume could
// not be mounted is kept for Unavailable.
func (s *Store) mountVolumes(ctx context.Context) error {
	volumes, err := s.meta.Volumes(ctx)
	if err != nil {
		return err
	}
	for _, v := range volumes {
		s.unavailable.set(v.ID, s.mountVolume(ctx, v))
	}
	return nil
}

func (s *Store) mountVolume(ctx context.Context, v *badger.Volume) error {
	driver, err := openDriver(ctx, v)
	if err != nil {
		return fmt.Errorf("volume %q is not available: %w", v.Label, err)
	}
	s.guardSpace(driver)
	err = s.ctl.Mount(ctx, v.ID, v.UUID, driver)
	if errors.Is(err, diskaccess.ErrVolumeDescriptorNotFound) {
		if v.BlobCount > 0 {
			return fmt.Errorf("volume %q at %s has no volume descriptor, but the metadata says it holds %d blobs: "+
				"is the right disk attached? Refusing to use it", v.Label, Where(v), v.BlobCount)
		}
		// An empty volume whose directory was emptied: initialize it again.
		if err := s.ctl.Initialize(ctx, v.UUID, driver); err != nil {
			return err
		}
		err = s.ctl.Mount(ctx, v.ID, v.UUID, driver)
	}
	if errors.Is(err, diskaccess.ErrWrongVolume) {
		return fmt.Errorf("volume %q at %s holds another volume: %w. Is the right disk attached?", v.Label, Where(v), err)
	}
	return err
}

// Volumes lists the registered volumes, mounted or not.
func (s *Store) Volumes(ctx context.Context) ([]*badger.Volume, error) { return s.meta.Volumes(ctx) }

// LookupVolume returns the registered volume named (label or id),
// whether or not it is mounted; a *NotFoundError if there is none.
func (s *Store) LookupVolume(ctx context.Context, name string) (*badger.Volume, error) {
	v, err := s.meta.Volume(ctx, name)
	if err != nil {
		return nil, &NotFoundError{What: "volume", Name: name}
	}
	return v, nil
}

// Volume returns the named volume (label or id) if it is mounted; else a
// *NotFoundError, or why it is not available.
func (s *Store) Volume(ctx context.Context, name string) (*badger.Volume, error) {
	v, err := s.LookupVolume(ctx, name)
	if err != nil {
		return nil, err
	}
	if why := s.unavailable.get(v.ID); why != nil {
		return nil, why
	}
	return v, nil
}

// Unavailable says why a registered volume is not mounted (nil: it is).
func (s *Store) Unavailable(volumeID int) error { return s.unavailable.get(volumeID) }

// VolumeName is a volume's label, for messages (its id if it has none).
func (s *Store) VolumeName(ctx context.Context, id int) string { return s.meta.VolumeName(ctx, id) }

// ChosenVolumes is the named volume, or (name "") every volume.
func (s *Store) ChosenVolumes(ctx context.Context, name string) ([]*badger.Volume, error) {
	if name == "" {
		return s.meta.Volumes(ctx)
	}
	v, err := s.LookupVolume(ctx, name)
	if err != nil {
		return nil, err
	}
	return []*badger.Volume{v}, nil
}

// guardSpace makes a local volume on the filesystem of the metadata ask
// the metadata store before each write (badger.Store.CheckSpace), so that
// filling the volume never takes the room the metadata keeps for itself.
func (s *Store) guardSpace(driver blobstore.Driver) {
	local, ok := driver.(*localfs.Store)
	if !ok || s.meta.ReadOnly() {
		return
	}
	volume, err := os.Stat(local.Dir())
	if err != nil {
		return
	}
	meta, err := os.Stat(s.meta.Dir())
	if err != nil {
		return
	}
	if volume.Sys().(*syscall.Stat_t).Dev == meta.Sys().(*syscall.Stat_t).Dev {
		local.SetSpaceCheck(s.meta.CheckSpace)
	}
}
