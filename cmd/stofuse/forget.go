package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/store"
)

// keepFlags are forget's rules, by flag name, in the policy's order.
var keepFlags = []struct {
	name  string
	usage string
	set   func(p *store.RetentionPolicy, n int)
}{
	{"keep-last", "keep the N newest snapshots", func(p *store.RetentionPolicy, n int) { p.Last = n }},
	{"keep-hourly", "keep the newest snapshot of each of the last N hours that have one", func(p *store.RetentionPolicy, n int) { p.Hourly = n }},
	{"keep-daily", "keep the newest snapshot of each of the last N days that have one", func(p *store.RetentionPolicy, n int) { p.Daily = n }},
	{"keep-weekly", "keep the newest snapshot of each of the last N weeks (Monday to Sunday) that have one", func(p *store.RetentionPolicy, n int) { p.Weekly = n }},
	{"keep-monthly", "keep the newest snapshot of each of the last N months that have one", func(p *store.RetentionPolicy, n int) { p.Monthly = n }},
	{"keep-yearly", "keep the newest snapshot of each of the last N years that have one", func(p *store.RetentionPolicy, n int) { p.Yearly = n }},
}

func forgetCommand() *cli.Command {
	flags := []cli.Flag{&cli.BoolFlag{Name: "dry-run", Usage: "list what would be kept and forgotten, and why; change nothing"}}
	for _, f := range keepFlags {
		flags = append(flags, &cli.IntFlag{Name: f.name, Usage: f.usage})
	}
	return &cli.Command{
		Name:      "forget",
		Usage:     "forget the snapshots a retention policy does not keep",
		ArgsUsage: "[COLLECTION...]",
		Description: "Applies a retention policy to each COLLECTION's snapshots (default: every collection),\n" +
			"with restic's rules: a snapshot that any --keep rule keeps is kept, every other one is\n" +
			"forgotten. Hours, days, weeks (Monday to Sunday), months and years are UTC calendar\n" +
			"periods, and only periods that have a snapshot count. A rule whose count is left when\n" +
			"the oldest snapshot is reached keeps the oldest too. The newest snapshot is always\n" +
			"kept. At least one rule is needed: forget never forgets everything.\n\n" +
			"A forgotten snapshot's name is removed from every volume of the store (they must all\n" +
			"be available), so snapshots/, recover and replicate no longer see it; its blobs stay\n" +
			"until stofuse gc removes them (gc --dry-run says what it would free). Each line\n" +
			"says keep or forget, and why.",
		Flags:  flags,
		Action: forgetSnapshots,
	}
}

// policyOf reads the --keep flags; none is a usage error.
func policyOf(c *cli.Context) (store.RetentionPolicy, error) {
	var p store.RetentionPolicy
	for _, f := range keepFlags {
		n := c.Int(f.name)
		if n < 0 {
			return p, usageError("--%s %d: N must be 0 or more", f.name, n)
		}
		f.set(&p, n)
	}
	if p == (store.RetentionPolicy{}) {
		return p, usageError("forget needs a rule: --keep-last, --keep-hourly, --keep-daily, --keep-weekly, " +
			"--keep-monthly or --keep-yearly with N > 0 (with none it would forget every snapshot)")
	}
	return p, nil
}

func forgetSnapshots(c *cli.Context) error {
	p, err := policyOf(c)
	if err != nil {
		return err
	}
	s, err := openSession(c, noKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	names := c.Args().Slice()
	if len(names) == 0 {
		all, err := s.Collections(c.Context)
		if err != nil {
			return err
		}
		for _, coll := range all {
			names = append(names, coll.Name)
		}
	}
	for _, name := range names {
		r, err := s.Forget(c.Context, name, p, c.Bool("dry-run"))
		if r != nil {
			s.printForget(r)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// printForget prints a line per snapshot (text only) and a summary line
// per collection (the whole result with --json).
func (s *session) printForget(r *store.ForgetResult) {
	forget, forgotten := "forget", "forgotten"
	if r.DryRun {
		forget, forgotten = "would forget", "would be forgotten (dry run: nothing was changed)"
	}
	for _, sn := range r.Snapshots {
		line := fmt.Sprintf("%-12s %s  %s", r.Collection, sn.Name, forget)
		if sn.Keep {
			line = fmt.Sprintf("%-12s %s  keep (%s)", r.Collection, sn.Name, strings.Join(sn.Reasons, ", "))
		}
		s.out.textf("%s", line)
	}
	summary := fmt.Sprintf("%s: %d kept, %d %s (%s)", r.Collection, r.Kept, r.Forgotten, forgotten, r.Policy)
	if len(r.Snapshots) == 0 {
		summary = r.Collection + ": no snapshots"
	}
	s.out.result(r, "%s", summary)
}
