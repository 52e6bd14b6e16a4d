package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/uuid"
	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/blobstore/localfs"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
)

// addLocalVolume initializes dir as a new volume and registers it. A
// directory that already holds a volume (of this store or another) is
// refused, and so is a label in use.
func addLocalVolume(ctx context.Context, meta *badger.Store, ctl *diskaccess.Controller, label, dir string) (*badger.Volume, error) {
	if _, err := meta.Volume(ctx, label); err == nil {
		return nil, usageError("there is a volume %q already", label)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	driver, err := localfs.Open(abs)
	if err != nil {
		return nil, usageError("%v (create the directory first)", err)
	}
	id := uuid.NewString()
	if err := ctl.Initialize(ctx, id, driver); err != nil {
		if errors.Is(err, diskaccess.ErrVolumeAlreadyInitialized) {
			return nil, usageError("%s already holds a stofuse volume (%v); choose an empty directory", abs, err)
		}
		return nil, err
	}
	v, err := meta.AddVolume(ctx, badger.Volume{Label: label, UUID: id, Driver: "localfs", Settings: map[string]string{"path": abs}})
	if err != nil {
		// Leave the directory as it was, so that volume add can be retried.
		driver.Remove(ctx, blobstore.Ref{})
		return nil, err
	}
	return v, nil
}

// openDriver returns the driver of a registered volume.
func openDriver(v *badger.Volume) (blobstore.Driver, error) {
	switch v.Driver {
	case "localfs":
		return localfs.Open(v.Settings["path"])
	}
	return nil, fmt.Errorf("volume %q: unknown driver %q", v.Label, v.Driver)
}

// mountVolumes mounts every registered volume it can. Why a volume could not
// be mounted is kept for the command that needs it.
func (s *session) mountVolumes(ctx context.Context) error {
	volumes, err := s.meta.Volumes(ctx)
	if err != nil {
		return err
	}
	for _, v := range volumes {
		if err := s.mountVolume(ctx, v); err != nil {
			s.unavailable[v.ID] = err
		}
	}
	return nil
}

func (s *session) mountVolume(ctx context.Context, v *badger.Volume) error {
	driver, err := openDriver(v)
	if err != nil {
		return fmt.Errorf("volume %q is not available: %w", v.Label, err)
	}
	err = s.ctl.Mount(ctx, v.ID, v.UUID, driver)
	if errors.Is(err, diskaccess.ErrVolumeDescriptorNotFound) {
		if v.BlobCount > 0 {
			return fmt.Errorf("volume %q at %s has no volume descriptor, but the metadata says it holds %d blobs: "+
				"is the right disk attached? Refusing to use it", v.Label, v.Settings["path"], v.BlobCount)
		}
		// An empty volume whose directory was emptied: initialize it again.
		if err := s.ctl.Initialize(ctx, v.UUID, driver); err != nil {
			return err
		}
		err = s.ctl.Mount(ctx, v.ID, v.UUID, driver)
	}
	if errors.Is(err, diskaccess.ErrWrongVolume) {
		return fmt.Errorf("volume %q at %s holds another volume: %w. Is the right disk attached?", v.Label, v.Settings["path"], err)
	}
	return err
}

// volume returns the named volume (label or id), mounted, or a clear error.
func (s *session) volume(ctx context.Context, name string) (*badger.Volume, error) {
	v, err := s.meta.Volume(ctx, name)
	if err != nil {
		return nil, usageError("no volume %q (see stofuse volume ls)", name)
	}
	if why := s.unavailable[v.ID]; why != nil {
		return nil, why
	}
	return v, nil
}

func volumeCommand() *cli.Command {
	return &cli.Command{
		Name:  "volume",
		Usage: "manage the volumes blobs are stored on",
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "initialize a directory as a new volume",
				ArgsUsage: "NAME",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "path", Usage: "the volume directory (created if missing; must not hold another volume)", TakesFile: true},
				},
				Action: volumeAdd,
			},
			{
				Name:   "ls",
				Usage:  "list the volumes with their blob counts and sizes",
				Action: volumeList,
			},
		},
	}
}

func volumeAdd(c *cli.Context) error {
	if c.NArg() != 1 || c.String("path") == "" {
		return usageError("usage: stofuse volume add NAME --path DIR")
	}
	s, err := openSession(c, noKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := os.MkdirAll(c.String("path"), 0o700); err != nil {
		return err
	}
	v, err := addLocalVolume(c.Context, s.meta, s.ctl, c.Args().First(), c.String("path"))
	if err != nil {
		return err
	}
	s.out.result(v, "added volume %q (id %d, uuid %s) at %s", v.Label, v.ID, v.UUID, v.Settings["path"])
	return nil
}

func volumeList(c *cli.Context) error {
	s, err := openSession(c, noKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	volumes, err := s.meta.Volumes(c.Context)
	if err != nil {
		return err
	}
	s.out.textf("%-4s %-12s %-36s %-8s %10s %12s  %s", "ID", "NAME", "UUID", "DRIVER", "BLOBS", "STORED", "WHERE")
	for _, v := range volumes {
		state := v.Settings["path"]
		if why := s.unavailable[v.ID]; why != nil {
			state += " (unavailable: " + why.Error() + ")"
		}
		s.out.result(v, "%-4d %-12s %-36s %-8s %10d %12s  %s", v.ID, v.Label, v.UUID, v.Driver, v.BlobCount, formatBytes(v.Bytes), state)
	}
	return nil
}
