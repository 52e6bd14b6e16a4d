package main

import (
	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/blobstore"
)

func releaseCommand() *cli.Command {
	return &cli.Command{
		Name:      "release",
		Usage:     "end blobs' explicit stores, so that gc may remove them once nothing else keeps them",
		ArgsUsage: "REF...",
		Description: "A blob stored with stofuse put, or written into ref/ (also when it was stored\n" +
			"already), is an explicit store: gc keeps it, whatever else uses it, until it is\n" +
			"released. A released blob stays readable, and listed in ref/, until gc removes it,\n" +
			"which it does only if no file, retained snapshot or grace period keeps it; a put or\n" +
			"a write of it into ref/ makes it an explicit store again. Releasing a blob that is not\n" +
			"an explicit store changes nothing. Needs no key.",
		Action: eachRef("release", noKeys, (*session).release),
	}
}

type releaseResult struct {
	Ref      blobstore.Ref `json:"ref"`
	Released bool          `json:"released"` // false: it was not an explicit store
}

func (s *session) release(c *cli.Context, ref blobstore.Ref) error {
	released, err := s.Release(c.Context, ref)
	if err != nil {
		return err
	}
	what := "released"
	if !released {
		what = "not an explicit store (nothing to release)"
	}
	s.out.result(releaseResult{Ref: ref, Released: released}, "%s  %s", ref, what)
	return nil
}
