package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// parseRefs parses the command's arguments as refs.
func parseRefs(c *cli.Context) ([]blobstore.Ref, error) {
	var refs []blobstore.Ref
	for _, arg := range c.Args().Slice() {
		ref, err := blobstore.ParseRef(arg)
		if err != nil {
			return nil, usageError("%v", err)
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// eachRef is the action of a command that does one thing to each REF it is
// given, in order, stopping at the first error.
func eachRef(name string, keys keyNeed, do func(*session, *cli.Context, blobstore.Ref) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		refs, err := parseRefs(c)
		if err == nil && len(refs) == 0 {
			err = usageError("%s needs at least one REF", name)
		}
		if err != nil {
			return err
		}
		s, err := openSession(c, keys)
		if err != nil {
			return err
		}
		defer s.Close()
		for _, ref := range refs {
			if err := do(s, c, ref); err != nil {
				return err
			}
		}
		return nil
	}
}

func catCommand() *cli.Command {
	return &cli.Command{
		Name:      "cat",
		Usage:     "write blobs' contents to standard output, verified",
		ArgsUsage: "REF...",
		Description: "Reads each blob from the cheapest volume that holds it. Every frame is\n" +
			"authenticated before it is written out: a damaged blob stops with an error\n" +
			"naming the ref and the frame, and exit code 1.",
		Action: eachRef("cat", needKeys, (*session).cat),
	}
}

// cat writes a blob to stdout from the cheapest volume that holds it. If
// that copy is damaged or lost, it goes on from the same offset with the
// next volume, so the output is whole and every byte verified.
func (s *session) cat(c *cli.Context, ref blobstore.Ref) error {
	meta, err := s.meta.QueryBlobMetadata(c.Context, ref, nil)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no blob %s", ref)
	}
	if err != nil {
		return err
	}
	order := s.ctl.ReadOrder(meta.Volumes)
	if len(order) == 0 {
		return s.explainUnavailable(meta.Volumes, fmt.Errorf("no volume holding blob %s is available", ref))
	}
	var written int64
	for i, volume := range order {
		n, err := s.catFrom(c, ref, volume, written)
		written += n
		if err == nil {
			return nil
		}
		if !errors.Is(err, diskaccess.ErrCorrupt) || i == len(order)-1 {
			return err
		}
		s.out.warnf("%v; reading on from volume %s", err, s.volumeName(c, order[i+1]))
	}
	return nil
}

// catFrom writes blob ref from offset on, read from volume with frames
// opened ahead.
func (s *session) catFrom(c *cli.Context, ref blobstore.Ref, volume int, offset int64) (int64, error) {
	blob, err := s.ctl.OpenBlob(c.Context, ref, s.meta.Ring(), volume)
	if err != nil {
		return 0, err
	}
	stream := blob.Stream(offset)
	defer stream.Close()
	return io.Copy(c.App.Writer, stream)
}

// explainUnavailable says why none of the volumes holding a blob is mounted.
func (s *session) explainUnavailable(volumes []int, err error) error {
	var reasons []string
	for _, id := range volumes {
		if why := s.unavailable.get(id); why != nil {
			reasons = append(reasons, why.Error())
		}
	}
	if len(reasons) == 0 {
		return err
	}
	return errors.New(strings.Join(reasons, "; "))
}

func statCommand() *cli.Command {
	return &cli.Command{
		Name:      "stat",
		Usage:     "show what is stored about blobs",
		ArgsUsage: "REF...",
		Description: "Shows each blob's size, stored size, compression, CRC-32C, the volumes that\n" +
			"hold it, its key id and when it was created. Needs no key.",
		Action: eachRef("stat", noKeys, (*session).stat),
	}
}

type statResult struct {
	Ref        blobstore.Ref `json:"ref"`
	Size       int64         `json:"size"`
	Stored     int64         `json:"stored_size"`
	Compressed bool          `json:"compressed"`
	CRC32C     string        `json:"crc32c"`
	Volumes    []string      `json:"volumes"`
	KeyID      string        `json:"key_id"`
	Created    time.Time     `json:"created"`
	Files      int           `json:"files"` // files of files/ whose content it is
}

func (s *session) stat(c *cli.Context, ref blobstore.Ref) error {
	meta, err := s.meta.QueryBlobMetadata(c.Context, ref, nil)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no blob %s", ref)
	}
	if err != nil {
		return err
	}
	r := statResult{Ref: ref, Size: meta.RealSize, Stored: meta.SizeOnDisk, Compressed: meta.IsCompressed,
		CRC32C: hex.EncodeToString(meta.ExpectedCrc32), KeyID: meta.EncryptionKeyId, Created: meta.Created}
	for _, id := range meta.Volumes {
		r.Volumes = append(r.Volumes, s.volumeName(c, id))
	}
	if r.Files, err = s.meta.FilesUsing(c.Context, ref); err != nil {
		return err
	}
	files := fmt.Sprint(r.Files)
	if r.Files == 0 {
		files = "0 (no file under files/ uses it: stored with put or through ref/, or its files were deleted; blobs are kept)"
	}
	s.out.result(r, "ref:         %s\nsize:        %d bytes\nstored size: %d bytes\ncompressed:  %s\ncrc32c:      %s\nvolumes:     %s\nkey:         %s\ncreated:     %s\nfiles:       %s",
		ref, r.Size, r.Stored, yesNo(r.Compressed), r.CRC32C, strings.Join(r.Volumes, ", "), r.KeyID, r.Created.Format(time.RFC3339), files)
	return nil
}

func (s *session) volumeName(c *cli.Context, id int) string {
	return s.meta.VolumeName(c.Context, id)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
