package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/store"
)

func replicateCommand() *cli.Command {
	return &cli.Command{
		Name:      "replicate",
		Usage:     "copy blobs from one volume to another, or (--policy) until each has the copies its policy asks for, verified",
		ArgsUsage: "[REF...]",
		Description: "Copies every blob of the source volume that the target lacks (or the REFs given)\n" +
			"as stored bytes, without decrypting: the bytes are checked against their CRC-32C\n" +
			"on the way, and a copy is recorded only once it is durable. A damaged source blob\n" +
			"is reported and not copied. Resumable: a second run copies only what is missing.\n" +
			"With --policy instead of --from and --to: copies every blob below its collection's\n" +
			"copies policy (see `stofuse collection set`) to the volumes it allows, as a mount does\n" +
			"in the background. Needs no key.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Usage: "source volume (name or id)"},
			&cli.StringFlag{Name: "to", Usage: "target volume (name or id)"},
			&cli.BoolFlag{Name: "policy", Usage: "copy what the copies policies ask for, from and to any volumes"},
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
	policy := c.Bool("policy")
	switch {
	case policy && (c.IsSet("from") || c.IsSet("to") || len(refs) > 0):
		return usageError("usage: stofuse replicate --policy [--limit-rate R] (no --from, --to or REFs)")
	case !policy && (c.String("from") == "" || c.String("to") == ""):
		return usageError("usage: stofuse replicate --from VOLUME --to VOLUME [REF...] | --policy")
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
	if policy {
		return s.replicatePolicy(c, rate)
	}
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

// replicatePolicy is replicate --policy.
func (s *session) replicatePolicy(c *cli.Context, rate float64) error {
	summary, err := s.ReplicateByPolicy(c.Context, store.PolicyOptions{ReadRate: rate, Reporter: s.out.reporter(),
		Failed: func(f store.Finding) { s.out.result(f, "FAILED   %s  %s: %s", f.Ref, f.Volume, f.Error) }})
	if err != nil {
		return err
	}
	if summary.Trivial {
		s.out.result(map[string]store.PolicySummary{"summary": summary},
			"every policy is one copy, which every blob has: nothing to copy (see stofuse collection set)")
		return nil
	}
	var to []string
	for _, v := range slices.Sorted(maps.Keys(summary.To)) {
		to = append(to, fmt.Sprintf("%d to %s", summary.To[v], v))
	}
	where := ""
	if len(to) > 0 {
		where = " (" + strings.Join(to, ", ") + ")"
	}
	s.out.result(map[string]store.PolicySummary{"summary": summary},
		"%d of %d blobs were below their copies policy: made %d copies%s, %s; %d failed; %d blobs still below policy",
		summary.Below, summary.Checked, summary.Copied, where, formatBytes(summary.Bytes), summary.Failed, summary.Short)
	if summary.TooFew > 0 {
		s.out.warnf("%d blobs are below their policy for want of volumes: it asks for more copies than the store has volumes it allows (stofuse volume add, or a lower --copies)", summary.TooFew)
	}
	if other := summary.Short - summary.TooFew; other > 0 {
		s.out.warnf("%d blobs are still below their policy for a copy that failed (above) or a volume that is not available (stofuse status says which)", other)
	}
	if summary.Failed > 0 || summary.Short > 0 {
		return errFindings
	}
	return nil
}

func upper(s string) string { return strings.ToUpper(s) }
