package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/store"
)

func volumeCommand() *cli.Command {
	return &cli.Command{
		Name:  "volume",
		Usage: "manage the volumes blobs are stored on",
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "initialize a directory or an S3 bucket as a new volume",
				ArgsUsage: "NAME",
				Description: "A local volume: --path DIR (created if missing; empty, outside the store directory,\n" +
					"not inside another volume nor holding one).\n" +
					"An S3 volume: --s3-endpoint URL --s3-bucket BUCKET [--s3-prefix PREFIX/] [--s3-region R];\n" +
					"the bucket must exist. Credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n" +
					"(and AWS_SESSION_TOKEN), else from ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE,\n" +
					"AWS_PROFILE), whenever the volume is used: they are never stored or printed.",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "path", Usage: "the volume directory (created if missing; must be empty, outside the store and other volumes)", TakesFile: true},
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
	label := c.Args().First()
	v := store.S3Volume(label, c.String("s3-endpoint"), c.String("s3-bucket"), c.String("s3-prefix"), c.String("s3-region"))
	if local {
		// AddVolume creates the directory, once it has checked it.
		v = store.LocalVolume(label, envOf(c).path(c.String("path")))
	}
	added, err := s.AddVolume(c.Context, v)
	if err != nil {
		return fmt.Errorf("volume add: %w", err)
	}
	s.out.result(added, "added volume %q (id %d, uuid %s) at %s", added.Label, added.ID, added.UUID, store.Where(added))
	return nil
}

func volumeList(c *cli.Context) error {
	s, err := openSession(c, noKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	volumes, err := s.Volumes(c.Context)
	if err != nil {
		return err
	}
	s.out.textf("%-4s %-12s %-36s %-8s %10s %12s  %s", "ID", "NAME", "UUID", "DRIVER", "BLOBS", "STORED", "WHERE")
	for _, v := range volumes {
		s.out.result(v, "%-4d %-12s %-36s %-8s %10d %12s  %s", v.ID, v.Label, v.UUID, v.Driver, v.BlobCount, formatBytes(v.Bytes), s.whereAndState(v))
	}
	return nil
}

// whereAndState is where a volume lives, and why it is unavailable if it
// is.
func (s *session) whereAndState(v *badger.Volume) string {
	state := store.Where(v)
	if why := s.Unavailable(v.ID); why != nil {
		state += " (unavailable: " + why.Error() + ")"
	}
	return state
}
