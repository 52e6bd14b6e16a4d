package main

import (
	"fmt"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/store"
)

func recoverCommand() *cli.Command {
	return &cli.Command{
		Name:  "recover",
		Usage: "rebuild a store whose metadata is lost from one of its volumes and a key",
		Description: "Rebuilds the store (--store, STOFUSE_STORE) from the volume in --from DIR, or in an\n" +
			"S3 bucket (--from-s3-endpoint URL --from-s3-bucket B [--from-s3-prefix P/] [--from-s3-region R]),\n" +
			"given a key that opened the store (--key-file, STOFUSE_PASSPHRASE, or a prompt): the\n" +
			"volume, the collections and their keys, the index of every blob (each one's bytes\n" +
			"verified before it is indexed: against the checksum the blob index of its snapshot\n" +
			"recorded, or with its key), and each collection's files/ tree from\n" +
			"its newest intact snapshot. The store directory is new, or one whose meta/ is gone;\n" +
			"a working store is never written over. What changed after the last snapshot is not\n" +
			"in any tree: its blobs are kept, and counted. Exit code 1 if anything could not be\n" +
			"brought back (each thing is named), 2 for a key that does not open the volume.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Usage: "the volume directory to recover from", TakesFile: true},
			&cli.StringFlag{Name: "from-s3-endpoint", Usage: "S3 server URL of the volume to recover from"},
			&cli.StringFlag{Name: "from-s3-bucket", Usage: "its bucket"},
			&cli.StringFlag{Name: "from-s3-prefix", Usage: "its key prefix, ending in /"},
			&cli.StringFlag{Name: "from-s3-region", Usage: "its region (default: ask the server)"},
		},
		Action: recoverStore,
	}
}

func recoverStore(c *cli.Context) error {
	local, remote := c.String("from") != "", c.String("from-s3-endpoint") != ""
	if c.NArg() != 0 || local == remote || remote && c.String("from-s3-bucket") == "" {
		return usageError("usage: stofuse recover (--from DIR | --from-s3-endpoint URL --from-s3-bucket BUCKET [--from-s3-prefix P/] [--from-s3-region R])")
	}
	dir, err := storeDir(c)
	if err != nil {
		return err
	}
	v := store.S3Volume(store.DefaultVolume, c.String("from-s3-endpoint"), c.String("from-s3-bucket"), c.String("from-s3-prefix"), c.String("from-s3-region"))
	if local {
		path, err := filepath.Abs(envOf(c).path(c.String("from")))
		if err != nil {
			return err
		}
		v = store.LocalVolume(store.DefaultVolume, path)
	}
	s := &session{out: newOutput(c)}
	key, err := s.findKey(c, dir)
	if err != nil {
		return err
	}
	st, report, err := store.Recover(c.Context, dir, v, key, s.out.reporter())
	if err != nil {
		return err
	}
	defer st.Close()
	for _, f := range report.Unusable {
		s.out.result(f, "UNUSABLE %s  %s", f.Ref, f.Error)
	}
	for _, rc := range report.Collections {
		switch {
		case rc.Snapshot == "" && rc.Error == "":
			s.out.result(rc, "collection %s: no snapshot on the volume: no files/ tree", rc.Name)
		case rc.Snapshot == "":
			s.out.result(rc, "collection %s: NOT RECOVERED: %s", rc.Name, rc.Error)
		default:
			s.out.result(rc, "collection %s: %d entries from snapshot %s%s", rc.Name, rc.Files, rc.Snapshot, problems(rc))
		}
	}
	s.out.result(map[string]*store.RecoverReport{"summary": report},
		"recovered store %s from %s: %d blobs (%s) verified and indexed, %d unusable; %d used by no restored tree (older snapshots, or written after the last one; kept); %d explicit stores (put, ref/, or written after the last snapshot; kept until released)",
		report.Store, report.Volume, report.Blobs, formatBytes(report.Bytes), len(report.Unusable), report.Unreferenced, report.Explicit)
	if !report.Complete() {
		return &exitError{code: exitFailure, err: fmt.Errorf("not everything on the volume could be brought back (see above)")}
	}
	return nil
}

// problems says what went wrong with a recovered collection.
func problems(rc store.RecoveredCollection) string {
	var out string
	for _, skipped := range rc.Skipped {
		out += "; newer snapshot not used: " + skipped
	}
	if rc.Error != "" {
		out += "; " + rc.Error
	}
	return out
}
