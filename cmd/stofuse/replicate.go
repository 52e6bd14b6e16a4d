package main

import (
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/blobstore"
)

func replicateCommand() *cli.Command {
	return &cli.Command{
		Name:      "replicate",
		Usage:     "copy blobs from one volume to another, verified",
		ArgsUsage: "[REF...]",
		Description: "Copies every blob of the source volume that the target lacks (or the REFs given)\n" +
			"as stored bytes, without decrypting: the bytes are checked against their CRC-32C\n" +
			"on the way, and a copy is recorded only once it is durable. A damaged source blob\n" +
			"is reported and not copied. Resumable: a second run copies only what is missing.\n" +
			"Needs no key.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Usage: "source volume (name or id)"},
			&cli.StringFlag{Name: "to", Usage: "target volume (name or id)"},
			limitRateFlag,
		},
		Action: replicate,
	}
}

type replicateSummary struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Copied  int    `json:"copied"`
	Bytes   int64  `json:"bytes"`
	Present int    `json:"already_there"`
	Failed  int    `json:"failed"`
}

func replicate(c *cli.Context) error {
	refs, err := parseRefs(c)
	if err != nil {
		return err
	}
	if c.String("from") == "" || c.String("to") == "" {
		return usageError("usage: stofuse replicate --from VOLUME --to VOLUME [REF...]")
	}
	ctx, err := limitedContext(c)
	if err != nil {
		return err
	}
	s, err := openSession(c, noKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	from, err := s.volume(ctx, c.String("from"))
	if err != nil {
		return err
	}
	to, err := s.volume(ctx, c.String("to"))
	if err != nil {
		return err
	}
	if from.ID == to.ID {
		return usageError("--from and --to name the same volume")
	}
	if len(refs) == 0 {
		err := s.meta.ListVolumeBlobs(ctx, from.ID, blobstore.Ref{}, func(ref blobstore.Ref) error {
			refs = append(refs, ref)
			return nil
		})
		if err != nil {
			return err
		}
	}
	summary := replicateSummary{From: from.Label, To: to.Label}
	p := s.out.startProgress("replicate", int64(len(refs)), 0)
	for _, ref := range refs {
		meta, err := s.meta.QueryBlobMetadata(ctx, ref, nil)
		if err == nil && slices.Contains(meta.Volumes, to.ID) {
			summary.Present++
			p.add(1, 0)
			continue
		}
		if err == nil {
			err = s.ctl.Replicate(ctx, from.ID, to.ID, ref)
		}
		if ctx.Err() != nil {
			p.finish()
			return ctx.Err()
		}
		if err != nil {
			summary.Failed++
			s.out.result(finding{Kind: "failed", Ref: ref, Volume: from.Label, Error: err.Error()},
				"FAILED   %s  %v", ref, err)
			p.add(1, 0)
			continue
		}
		summary.Copied++
		summary.Bytes += meta.SizeOnDisk
		p.add(1, meta.SizeOnDisk)
	}
	p.finish()
	s.out.result(map[string]replicateSummary{"summary": summary},
		"replicated %d blobs (%s) from %s to %s; %d already there; %d failed",
		summary.Copied, formatBytes(summary.Bytes), from.Label, to.Label, summary.Present, summary.Failed)
	if summary.Failed > 0 {
		return errFindings
	}
	return nil
}

func upper(s string) string { return strings.ToUpper(s) }

func itoa(i int) string { return strconv.Itoa(i) }
