package main

import (
	"regexp"
	"runtime"
	runtimemetrics "runtime/metrics"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// registerMemory adds to registry what the daemon's memory is: the Go
// runtime's usual metrics (go_memstats_*, go_gc_heap_live_bytes: the heap
// the last Go collection found reachable) and the process's
// (process_resident_memory_bytes), and the highest live heap since the
// daemon started (a scrape between two collections misses a peak; this
// is taken at the end of every collection). It returns the watch of the
// peak, to stop at the unmount.
func registerMemory(registry *prometheus.Registry) *heapPeak {
	registry.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	peak := &heapPeak{}
	peak.sample()
	peak.watch()
	registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "stofuse", Name: "heap_live_peak_bytes",
		Help: "The highest live Go heap (reachable after a collection: go_gc_heap_live_bytes) since the daemon started; " +
			"the heap allocated grows to about twice the live heap between collections (GOGC=100)."},
		func() float64 { return float64(peak.highest.Load()) }))
	return peak
}

// heapPeak keeps the highest live heap found at the end of a Go
// collection: the runtime calls sample once per collection, through a
// cleanup of an object made unreachable for it (watch), so that the peak
// costs nothing between collections and misses none of them.
type heapPeak struct {
	highest atomic.Uint64 // bytes
	stopped atomic.Bool   // no more watching: the metrics were stopped
}

// gcMarker is the object whose collection says a collection ran. It
// holds a pointer: an object without any may be allocated in a block
// with others (the tiny allocator) and never be found unreachable alone.
type gcMarker struct{ _ *byte }

// watch samples at the end of every collection, until stop.
func (p *heapPeak) watch() {
	afterEachCollection(func() bool {
		if p.stopped.Load() {
			return false
		}
		p.sample()
		return true
	})
}

// afterEachCollection calls fn at the end of the next Go collection, and
// of each one after, until it returns false.
func afterEachCollection(fn func() bool) {
	runtime.AddCleanup(new(gcMarker), func(fn func() bool) {
		if fn() {
			afterEachCollection(fn)
		}
	}, fn)
}

// liveHeap is the heap the last collection found reachable (0 if the
// runtime does not say).
func liveHeap() uint64 {
	live := []runtimemetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	runtimemetrics.Read(live)
	if live[0].Value.Kind() != runtimemetrics.KindUint64 {
		return 0
	}
	return live[0].Value.Uint64()
}

// sample takes the live heap the last collection found.
func (p *heapPeak) sample() {
	bytes := liveHeap()
	for {
		old := p.highest.Load()
		if bytes <= old || p.highest.CompareAndSwap(old, bytes) {
			return
		}
	}
}

func (p *heapPeak) stop() { p.stopped.Store(true) }
