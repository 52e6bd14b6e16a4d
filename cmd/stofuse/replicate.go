package main

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/store"
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

func replicate(c *cli.Context) error {
	refs, err := parseRefs(c)
	if err != nil {
		return err
	}
	if c.String("from") == "" || c.String("to") == "" {
		return usageError("usage: stofuse replicate --from VOLUME --to VOLUME [REF...]")
	}
	rate, err := limitRate(c)
	if err != nil {
		return err
	}
	s, err := openSession(c, noKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	from, err := s.Volume(c.Context, c.String("from"))
	if err != nil {
		return err
	}
	to, err := s.Volume(c.Context, c.String("to"))
	if err != nil {
		return err
	}
	summary, err := s.Replicate(c.Context, from, to, store.ReplicateOptions{Refs: refs, ReadRate: rate,
		Reporter: s.out.reporter(), Failed: func(f store.Finding) { s.out.result(f, "FAILED   %s  %s", f.Ref, f.Error) }})
	if err != nil {
		return err
	}
	s.out.result(map[string]store.ReplicateSummary{"summary": summary},
		"replicated %d blobs (%s) from %s to %s; %d already there; %d failed",
		summary.Copied, formatBytes(summary.Bytes), from.Label, to.Label, summary.Present, summary.Failed)
	if summary.Failed > 0 {
		return errFindings
	}
	return nil
}

func upper(s string) string { return strings.ToUpper(s) }
