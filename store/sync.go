package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Sync is a group commit: when it returns nil, every blob stored and
// every metadata write made before it was called survives a power loss
// (they survive a crash of the process without it). It syncs every
// mounted volume's driver, then the metadata, and drops the journal
// entries that are durable now (see badger.Store.Commit).
//
// Concurrent calls share commits: a call made while a commit runs waits
// for the next one (what it is to make durable may have come after the
// running commit began), and every call that waits meanwhile shares that
// next one. A commit, once started, is not cancelled by its caller's ctx;
// a caller whose ctx ends stops waiting with ctx's error. On failure the
// error is every sharing caller's, and nothing is to be taken as durable:
// the next Sync tries it all again.
func (s *Store) Sync(ctx context.Context) error {
	return s.commits.do(ctx, func(ctx context.Context) error {
		return s.meta.Commit(ctx, s.syncVolumes)
	})
}

// syncVolumes syncs the driver of every mounted volume, at once. It
// relies on nothing unmounting a volume of an open store (only tests
// swap a driver): a volume unmounted while blobs stored on it wait for
// their syncs would not be synced, and the commit would still drop their
// journal entries.
func (s *Store) syncVolumes(ctx context.Context) error {
	volumes, err := s.meta.Volumes(ctx)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(volumes))
	for i, v := range volumes {
		if !s.ctl.IsMounted(v.ID) {
			continue
		}
		wg.Go(func() {
			if err := s.ctl.Sync(ctx, v.ID); err != nil {
				errs[i] = fmt.Errorf("volume %s: %w", v.Label, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// groupCommit shares commits among concurrent callers (see Store.Sync).
type groupCommit struct {
	mu      sync.Mutex   // guards running and next
	running *commitRound // the commit under way, nil if none
	next    *commitRound // the commit that callers arriving now wait for, nil if none
}

// commitRound is one commit; err is set before done is closed.
type commitRound struct {
	done chan struct{}
	err  error
}

// do runs commit for the caller, or waits for the one it may share.
func (g *groupCommit) do(ctx context.Context, commit func(context.Context) error) error {
	g.mu.Lock()
	if g.running == nil {
		return g.lead(ctx, g.take(), commit) // unlocks
	}
	if g.next == nil {
		g.next = &commitRound{done: make(chan struct{})}
	}
	mine, running := g.next, g.running
	g.mu.Unlock()
	select {
	case <-running.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.mu.Lock()
	if g.running == nil && g.next == mine {
		return g.lead(ctx, g.take(), commit) // nobody started it yet
	}
	g.mu.Unlock()
	select {
	case <-mine.done:
		return mine.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// take returns the round to run now: the one callers wait for, or a new
// one. g.mu is held.
func (g *groupCommit) take() *commitRound {
	round := g.next
	if round == nil {
		round = &commitRound{done: make(chan struct{})}
	}
	g.next = nil
	g.running = round
	return round
}

// lead runs round, which g.mu (held on entry, released here) made the
// running one.
func (g *groupCommit) lead(ctx context.Context, round *commitRound, commit func(context.Context) error) error {
	g.mu.Unlock()
	round.err = commit(context.WithoutCancel(ctx))
	g.mu.Lock()
	g.running = nil
	close(round.done)
	g.mu.Unlock()
	return round.err
}
