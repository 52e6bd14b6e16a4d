package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A caller arriving while a commit runs waits for the next one, and all
// such callers share it.
func TestGroupCommitShares(t *testing.T) {
	var g groupCommit
	var commits atomic.Int32
	started := make(chan int32, 10)
	release := make(chan struct{})
	commit := func(context.Context) error {
		n := commits.Add(1)
		started <- n
		<-release
		return nil
	}
	ctx := context.Background()
	firstDone := make(chan error)
	go func() { firstDone <- g.do(ctx, commit) }()
	if n := <-started; n != 1 {
		t.Fatalf("first commit is number %d", n)
	}
	var waiters sync.WaitGroup
	var returned atomic.Int32
	for range 8 {
		waiters.Go(func() {
			if err := g.do(ctx, commit); err != nil {
				t.Error(err)
			}
			returned.Add(1)
		})
	}
	time.Sleep(20 * time.Millisecond) // let them all queue
	release <- struct{}{}
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	if n := <-started; n != 2 {
		t.Fatalf("second commit is number %d", n)
	}
	if n := returned.Load(); n != 0 {
		t.Fatalf("%d callers returned before the commit they wait for finished", n)
	}
	release <- struct{}{}
	waiters.Wait()
	if n := commits.Load(); n != 2 {
		t.Errorf("%d commits for 9 callers, want 2", n)
	}
}

// A failed commit's error reaches every caller that shared it; a caller
// whose ctx ends stops waiting, and the commit it waited for still runs.
func TestGroupCommitErrorsAndCancel(t *testing.T) {
	var g groupCommit
	failure := errors.New("disk gone")
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	commit := func(context.Context) error {
		started <- struct{}{}
		<-release
		return failure
	}
	ctx := context.Background()
	first := make(chan error)
	go func() { first <- g.do(ctx, commit) }()
	<-started
	cancelled, cancel := context.WithCancel(ctx)
	gone := make(chan error)
	go func() { gone <- g.do(cancelled, commit) }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: %v", err)
	}
	close(release)
	if err := <-first; !errors.Is(err, failure) {
		t.Errorf("first caller: %v", err)
	}
	// The round the cancelled caller left is run by the next caller.
	if err := g.do(ctx, commit); !errors.Is(err, failure) {
		t.Errorf("next caller: %v", err)
	}
}
