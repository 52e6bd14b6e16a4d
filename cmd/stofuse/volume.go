package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/blobstore/localfs"
	"github.com/stofuse/stofuse/blobstore/s3"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
)

// addLocalVolume initializes dir as a new volume and registers it.
func addLocalVolume(ctx context.Context, meta *badger.Store, ctl *diskaccess.Controller, label, dir string) (*badger.Volume, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	v := &badger.Volume{Label: label, Driver: "localfs", Settings: map[string]string{"path": abs}}
	return addVolume(ctx, meta, ctl, v)
}

// addVolume initializes a new volume and registers it. A volume that
// already holds a descriptor (of this store or another) is refused, and so
// is a label in use.
func addVolume(ctx context.Context, meta *badger.Store, ctl *diskaccess.Controller, v *badger.Volume) (*badger.Volume, error) {
	if _, err := meta.Volume(ctx, v.Label); err == nil {
		return nil, usageError("there is a volume %q already", v.Label)
	}
	driver, err := openDriver(ctx, v)
	if err != nil {
		return nil, err
	}
	v.UUID = uuid.NewString()
	if err := ctl.Initialize(ctx, v.UUID, driver); err != nil {
		if errors.Is(err, diskaccess.ErrVolumeAlreadyInitialized) {
			what := "directory"
			if v.Driver == "s3" {
				what = "bucket prefix"
			}
			return nil, usageError("%s already holds a stofuse volume (%v); choose an empty %s", where(v), err, what)
		}
		return nil, err
	}
	added, err := meta.AddVolume(ctx, *v)
	if err != nil {
		// Leave the volume as it was, so that volume add can be retried.
		driver.RemoveObject(ctx, diskaccess.VolumeDescriptorName)
		return nil, err
	}
	return added, nil
}

// where says where a volume lives, for messages and listings.
func where(v *badger.Volume) string {
	if v.Driver == "s3" {
		return strings.TrimSuffix(v.Settings["endpoint"], "/") + "/" + v.Settings["bucket"] + "/" + v.Settings["prefix"]
	}
	return v.Settings["path"]
}

// openDriver returns the driver of a registered volume. S3 credentials come
// from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or the
// shared credentials file, every time: they are never stored.
func openDriver(ctx context.Context, v *badger.Volume) (blobstore.Driver, error) {
	switch v.Driver {
	case "localfs":
		store, err := localfs.Open(v.Settings["path"])
		if err != nil {
			return nil, usageError("%v (create the directory first)", err)
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

// mountVolumes mounts every registered volume it can. Why a volume could not
// be mounted is kept for the command that needs it.
func (s *session) mountVolumes(ctx context.Context) error {
	volumes, err := s.meta.Volumes(ctx)
	if err != nil {
		return err
	}
	for _, v := range volumes {
		if err := s.mountVolume(ctx, v); err != nil {
			s.unavailable.set(v.ID, err)
		}
	}
	return nil
}

func (s *session) mountVolume(ctx context.Context, v *badger.Volume) error {
	driver, err := openDriver(ctx, v)
	if err != nil {
		return fmt.Errorf("volume %q is not available: %w", v.Label, err)
	}
	err = s.ctl.Mount(ctx, v.ID, v.UUID, driver)
	if errors.Is(err, diskaccess.ErrVolumeDescriptorNotFound) {
		if v.BlobCount > 0 {
			return fmt.Errorf("volume %q at %s has no volume descriptor, but the metadata says it holds %d blobs: "+
				"is the right disk attached? Refusing to use it", v.Label, where(v), v.BlobCount)
		}
		// An empty volume whose directory was emptied: initialize it again.
		if err := s.ctl.Initialize(ctx, v.UUID, driver); err != nil {
			return err
		}
		err = s.ctl.Mount(ctx, v.ID, v.UUID, driver)
	}
	if errors.Is(err, diskaccess.ErrWrongVolume) {
		return fmt.Errorf("volume %q at %s holds another volume: %w. Is the right disk attached?", v.Label, where(v), err)
	}
	return err
}

// volume returns the named volume (label or id), mounted, or a clear error.
func (s *session) volume(ctx context.Context, name string) (*badger.Volume, error) {
	v, err := s.meta.Volume(ctx, name)
	if err != nil {
		return nil, usageError("no volume %q (see stofuse volume ls)", name)
	}
	if why := s.unavailable.get(v.ID); why != nil {
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
				Usage:     "initialize a directory or an S3 bucket as a new volume",
				ArgsUsage: "NAME",
				Description: "A local volume: --path DIR (created if missing; must not hold another volume).\n" +
					"An S3 volume: --s3-endpoint URL --s3-bucket BUCKET [--s3-prefix PREFIX/] [--s3-region R];\n" +
					"the bucket must exist. Credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n" +
					"(and AWS_SESSION_TOKEN), else from ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE,\n" +
					"AWS_PROFILE), whenever the volume is used: they are never stored or printed.",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "path", Usage: "the volume directory (created if missing; must not hold another volume)", TakesFile: true},
					&cli.StringFlag{Name: "s3-endpoint", Usage: "S3 server URL, http(s)://host[:port]"},
					&cli.StringFlag{Name: "s3-bucket", Usage: "the bucket (must exist)"},
					&cli.StringFlag{Name: "s3-prefix", Usage: "key prefix inside the bucket, ending in /"},
					&cli.StringFlag{Name: "s3-region", Usage: "the bucket's region (default: ask the server)"},
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
	local, remote := c.String("path") != "", c.String("s3-endpoint") != ""
	if c.NArg() != 1 || local == remote || remote && c.String("s3-bucket") == "" {
		return usageError("usage: stofuse volume add NAME (--path DIR | --s3-endpoint URL --s3-bucket BUCKET [--s3-prefix P/] [--s3-region R])")
	}
	s, err := openSession(c, noKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	var v *badger.Volume
	if local {
		path := clientPath(c, c.String("path"))
		if err := os.MkdirAll(path, 0o700); err != nil {
			return err
		}
		v, err = addLocalVolume(c.Context, s.meta, s.ctl, c.Args().First(), path)
	} else {
		v, err = addVolume(c.Context, s.meta, s.ctl, &badger.Volume{Label: c.Args().First(), Driver: "s3", Settings: map[string]string{
			"endpoint": c.String("s3-endpoint"), "bucket": c.String("s3-bucket"),
			"prefix": c.String("s3-prefix"), "region": c.String("s3-region"),
		}})
	}
	if err != nil {
		return err
	}
	// Usable at once, also by a running mount's daemon.
	s.unavailable.set(v.ID, s.mountVolume(c.Context, v))
	s.out.result(v, "added volume %q (id %d, uuid %s) at %s", v.Label, v.ID, v.UUID, where(v))
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
		state := where(v)
		if why := s.unavailable.get(v.ID); why != nil {
			state += " (unavailable: " + why.Error() + ")"
		}
		s.out.result(v, "%-4d %-12s %-36s %-8s %10d %12s  %s", v.ID, v.Label, v.UUID, v.Driver, v.BlobCount, formatBytes(v.Bytes), state)
	}
	return nil
}
