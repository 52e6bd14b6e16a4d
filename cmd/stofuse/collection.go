package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/metastore/badger"
)

func collectionCommand() *cli.Command {
	return &cli.Command{
		Name:  "collection",
		Usage: "list the collections and set how many copies of their blobs are kept",
		Subcommands: []*cli.Command{
			{
				Name:   "ls",
				Usage:  "list the collections with their copies policies",
				Action: collectionList,
			},
			{
				Name:      "set",
				Usage:     "set a collection's copies policy, or (--default) the store's",
				ArgsUsage: "[COLLECTION]",
				Description: "Every blob of the collection is kept on N volumes (--copies N), any of the store's\n" +
					"or (--volumes A,B,...) only those: a mount copies the blobs below their policy in\n" +
					"the background, `stofuse replicate --policy` when nothing is mounted. A blob that\n" +
					"files of several collections use follows the largest N among them. The store's\n" +
					"policy (--default; one copy unless set) is that of every collection without its\n" +
					"own; --copies 0 makes a collection follow it again. Extra copies are never removed.",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "default", Usage: "set the store's policy, for the collections without their own"},
					&cli.IntFlag{Name: "copies", Usage: "how many verified copies on distinct volumes (0 with a collection: follow the store's)"},
					&cli.StringFlag{Name: "volumes", Usage: "comma-separated volumes (names or ids) the copies are kept on (default: any)"},
				},
				Action: collectionSet,
			},
		},
	}
}

type collectionListing struct {
	Name    string              `json:"name"`
	Copies  badger.CopiesPolicy `json:"copies"`
	Own     bool                `json:"own_policy"`
	Folder  bool                `json:"folder"`
	Created time.Time           `json:"created"`
}

func collectionList(c *cli.Context) error {
	s, err := openSession(c, noKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	def, err := s.Meta().DefaultCopies(c.Context)
	if err != nil {
		return err
	}
	collections, err := s.Meta().Collections(c.Context)
	if err != nil {
		return err
	}
	var listing []collectionListing
	s.out.textf("%-20s %-28s %s", "NAME", "COPIES", "CREATED")
	for _, coll := range collections {
		l := collectionListing{Name: coll.Name, Copies: def, Folder: coll.FolderIno != 0, Created: coll.Created}
		if coll.Copies != nil {
			l.Copies, l.Own = *coll.Copies, true
		}
		listing = append(listing, l)
		policy := s.describePolicy(c, l.Copies)
		if !l.Own {
			policy += " (store's)"
		}
		s.out.textf("%-20s %-28s %s", l.Name, policy, l.Created.Format(time.RFC3339))
	}
	s.out.textf("store's policy: %s", s.describePolicy(c, def))
	if s.out.json {
		s.out.result(map[string]any{"default": def, "collections": listing}, "")
	}
	return nil
}

// describePolicy says a policy in words: "2 copies on second, third".
func (s *session) describePolicy(c *cli.Context, p badger.CopiesPolicy) string {
	text := fmt.Sprintf("%d copies", p.Copies)
	if p.Copies == 1 {
		text = "1 copy"
	}
	if len(p.Volumes) == 0 {
		return text
	}
	var names []string
	for _, id := range p.Volumes {
		names = append(names, s.VolumeName(c.Context, id))
	}
	return text + " on " + strings.Join(names, ", ")
}

func collectionSet(c *cli.Context) error {
	if !c.IsSet("copies") || c.Bool("default") == (c.NArg() == 1) || c.NArg() > 1 {
		return usageError("usage: stofuse collection set (COLLECTION | --default) --copies N [--volumes A,B,...]")
	}
	copies := c.Int("copies")
	if copies < 0 || copies == 0 && (c.Bool("default") || c.IsSet("volumes")) {
		return usageError("--copies must be 1 or more (0 only alone, to make a collection follow the store's policy)")
	}
	s, err := openSession(c, noKeys)
	if err != nil {
		return err
	}
	defer s.Close()
	policy := badger.CopiesPolicy{Copies: copies}
	if names := c.String("volumes"); names != "" {
		for _, name := range strings.Split(names, ",") {
			v, err := s.LookupVolume(c.Context, strings.TrimSpace(name))
			if err != nil {
				return err
			}
			policy.Volumes = append(policy.Volumes, v.ID)
		}
	}
	var what string
	if c.Bool("default") {
		err, what = s.Meta().SetDefaultCopies(c.Context, policy), "the store's policy"
	} else if name := c.Args().First(); copies == 0 {
		err, what = s.Meta().SetCollectionCopies(c.Context, name, nil), fmt.Sprintf("collection %s follows the store's policy", name)
	} else {
		err, what = s.Meta().SetCollectionCopies(c.Context, name, &policy), fmt.Sprintf("collection %s", name)
	}
	if err != nil {
		return fmt.Errorf("collection set: %w", err)
	}
	host := envOf(c).host
	switch r := host.replicator(); {
	case r != nil:
		r.Rescan() // the mount copies what is below the policy now
	case copies <= 1:
	case host.mount() != nil:
		s.out.notef("the store is mounted read-only, which copies nothing: `stofuse replicate --policy` makes the copies once it is unmounted, or a read-write mount")
	default:
		s.out.notef("nothing is mounted: `stofuse replicate --policy` makes the copies (a mount makes them in the background)")
	}
	if copies == 0 {
		s.out.result(map[string]any{"collection": c.Args().First(), "policy": nil}, "%s", what)
		return nil
	}
	s.out.result(map[string]any{"policy": policy}, "%s: %s", what, s.describePolicy(c, policy))
	return nil
}
