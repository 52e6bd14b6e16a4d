package main

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/store"
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

// cat writes a blob to stdout, every byte verified, reading around a
// damaged copy.
func (s *session) cat(c *cli.Context, ref blobstore.Ref) error {
	return s.Cat(c.Context, ref, c.App.Writer, s.out.reporter())
}

func statCommand() *cli.Command {
	return &cli.Command{
		Name:      "stat",
		Usage:     "show what is stored about blobs",
		ArgsUsage: "REF...",
		Description: "Shows each blob's size, stored size, compression, CRC-32C, the volumes that\n" +
			"hold it, its key id, when it was created, how many files use it and whether it is\n" +
			"an explicit store (see stofuse release). Needs no key.",
		Action: eachRef("stat", noKeys, (*session).stat),
	}
}

type statResult struct {
	*store.BlobStat
	CRC32C string `json:"crc32c"`
}

func (s *session) stat(c *cli.Context, ref blobstore.Ref) error {
	st, err := s.Stat(c.Context, ref)
	if err != nil {
		return err
	}
	r := statResult{BlobStat: st, CRC32C: hex.EncodeToString(st.CRC32C)}
	files := fmt.Sprint(st.Files)
	if st.Files == 0 {
		files = "0 (no file under files/ uses it: stored with put or through ref/, a snapshot's, or its files were deleted)"
	}
	explicit := "no (kept only while a file, a retained snapshot or the grace period uses it)"
	if st.Explicit {
		explicit = "yes (stored with put or through ref/; kept until stofuse release)"
	}
	s.out.result(r, "ref:         %s\nsize:        %d bytes\nstored size: %d bytes\ncompressed:  %s\ncrc32c:      %s\nvolumes:     %s\nkey:         %s\ncreated:     %s\nfiles:       %s\nexplicit:    %s",
		ref, st.Size, st.Stored, yesNo(st.Compressed), r.CRC32C, strings.Join(st.Volumes, ", "), st.KeyID, st.Created.Format(time.RFC3339), files, explicit)
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
