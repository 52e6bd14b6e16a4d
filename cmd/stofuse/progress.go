package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// progress reports a long command's progress: a bar redrawn on a terminal,
// a plain line every interval otherwise, nothing with --json.
type progress struct {
	out                    *output
	verb                   string
	totalItems, totalBytes int64
	items, bytes           atomic.Int64
	start                  time.Time
	stop                   chan struct{}
	wg                     sync.WaitGroup
}

func (o *output) startProgress(verb string, totalItems, totalBytes int64) *progress {
	p := &progress{out: o, verb: verb, totalItems: totalItems, totalBytes: totalBytes, start: time.Now(), stop: make(chan struct{})}
	o.mu.Lock()
	o.progress = p
	o.mu.Unlock()
	if o.json {
		return p
	}
	every := o.interval
	if o.terminal {
		every = 200 * time.Millisecond
	}
	p.wg.Go(func() {
		ticker := time.NewTicker(every)
		defer ticker.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-ticker.C:
				p.draw()
			}
		}
	})
	return p
}

// add counts finished work.
func (p *progress) add(items, bytes int64) {
	p.items.Add(items)
	p.bytes.Add(bytes)
}

func (p *progress) line() string {
	items, bytes := p.items.Load(), p.bytes.Load()
	elapsed := time.Since(p.start)
	line := fmt.Sprintf("%s: %d/%d items, %s/%s, %s", p.verb, items, p.totalItems,
		formatBytes(bytes), formatBytes(p.totalBytes), formatRate(bytes, elapsed))
	if bytes > 0 && p.totalBytes > bytes {
		eta := time.Duration(float64(elapsed) * float64(p.totalBytes-bytes) / float64(bytes))
		line += fmt.Sprintf(", ETA %s", eta.Round(time.Second))
	}
	return line
}

func (p *progress) draw() {
	o := p.out
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.terminal {
		fmt.Fprintln(o.stderr, "stofuse: "+p.line())
		return
	}
	fraction := 0.0
	if p.totalBytes > 0 {
		fraction = float64(p.bytes.Load()) / float64(p.totalBytes)
	} else if p.totalItems > 0 {
		fraction = float64(p.items.Load()) / float64(p.totalItems)
	}
	o.clearBar()
	o.bar = fmt.Sprintf("%s %3.0f%% %s", bar(fraction, 30), 100*fraction, p.line())
	o.redrawBar()
}

// finish stops the reports and removes the bar.
func (p *progress) finish() {
	close(p.stop)
	p.wg.Wait()
	o := p.out
	o.mu.Lock()
	defer o.mu.Unlock()
	o.clearBar()
	o.bar = ""
	if o.progress == p {
		o.progress = nil
	}
}

// reporter is the store.Reporter that draws a job's stages as progress
// and prints its notes and warnings.
func (o *output) reporter() *jobReporter { return &jobReporter{out: o} }

type jobReporter struct {
	out *output
	cur *progress // the stage being drawn, if any
}

func (r *jobReporter) Begin(stage string, items, bytes int64) {
	r.End()
	r.cur = r.out.startProgress(stage, items, bytes)
}

func (r *jobReporter) Add(items, bytes int64) {
	if r.cur != nil {
		r.cur.add(items, bytes)
	}
}

func (r *jobReporter) End() {
	if r.cur != nil {
		r.cur.finish()
		r.cur = nil
	}
}

func (r *jobReporter) Note(msg string) { r.out.notef("%s", msg) }
func (r *jobReporter) Warn(msg string) { r.out.warnf("%s", msg) }
