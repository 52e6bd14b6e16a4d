package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/store"
)

func putCommand() *cli.Command {
	return &cli.Command{
		Name:      "put",
		Usage:     "store files as blobs",
		ArgsUsage: "FILE... (- for standard input)",
		Description: "Stores each file as one blob, of any size, and prints REF  FILE per file, as\n" +
			"sha256sum does, so that `sha256sum -c` can check the output against the files.\n" +
			"A blob the volume has already is not stored again.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "collection", Value: store.DefaultCollection, Usage: "the collection whose key seals the blobs"},
			&cli.StringFlag{Name: "volume", Value: store.DefaultVolume, Usage: "the volume to store on (name or id)"},
		},
		Action: putFiles,
	}
}

type putResult struct {
	Ref  blobstore.Ref `json:"ref"`
	File string        `json:"file"`
	Size int64         `json:"size"`
}

func putFiles(c *cli.Context) error {
	if c.NArg() == 0 {
		return usageError("put needs at least one FILE")
	}
	s, err := openSession(c, needKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx, e := c.Context, envOf(c)
	v, err := s.Volume(ctx, c.String("volume"))
	if err != nil {
		return err
	}
	collection := c.String("collection")
	if _, err := s.Collection(ctx, collection); err != nil {
		return err
	}
	var total int64
	for _, path := range c.Args().Slice() {
		if info, err := os.Stat(e.path(path)); err == nil && info.Mode().IsRegular() {
			total += info.Size()
		}
	}
	p := s.out.reporter()
	p.Begin("put", int64(c.NArg()), total)
	defer p.End()
	failed := 0
	for _, path := range c.Args().Slice() {
		ref, size, err := putFile(ctx, s, v.ID, collection, e.path(path), e.stdin, p)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			s.out.notef("%s: %v", path, err)
			failed++
			continue
		}
		p.Add(1, 0)
		s.out.result(putResult{Ref: ref, File: path, Size: size}, "%s  %s", ref, path)
	}
	// Stored means durable when put returns, mounted or not.
	if err := s.Sync(ctx); err != nil {
		return fmt.Errorf("the files were stored, but making them durable failed: %w", err)
	}
	if failed > 0 {
		return &exitError{code: exitFailure, err: fmt.Errorf("%d of %d files not stored", failed, c.NArg())}
	}
	return nil
}

// putFile stores one file, or standard input ("-").
func putFile(ctx context.Context, s *session, volume int, collection, path string, stdin io.Reader, r store.Reporter) (blobstore.Ref, int64, error) {
	f, cleanup, err := openInput(path, stdin)
	if err != nil {
		return blobstore.Ref{}, 0, err
	}
	defer cleanup()
	return s.Put(ctx, volume, collection, f, r)
}

// openInput opens a regular file, or spools standard input ("-") to an
// unlinked temp file so that it can be read twice.
func openInput(path string, stdin io.Reader) (*os.File, func(), error) {
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, err
		}
		if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
			f.Close()
			if err == nil {
				err = errors.New("not a regular file")
			}
			return nil, nil, err
		}
		return f, func() { f.Close() }, nil
	}
	spool, err := os.CreateTemp("", "stofuse-stdin-*")
	if err != nil {
		return nil, nil, err
	}
	os.Remove(spool.Name())
	if _, err := io.Copy(spool, stdin); err != nil {
		spool.Close()
		return nil, nil, err
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		spool.Close()
		return nil, nil, err
	}
	return spool, func() { spool.Close() }, nil
}
