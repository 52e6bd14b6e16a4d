package main

import (
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestHeapPeak: the daemon's metrics say its live heap now and at its
// highest; the peak stays once the heap shrinks, and is taken without a
// scrape at the time (from the collection's end).
func TestHeapPeak(t *testing.T) {
	registry := prometheus.NewRegistry()
	peak := registerMemory(registry)
	defer peak.stop()
	const big = 64 << 20
	keep := make([]byte, big)
	deadline := time.Now().Add(10 * time.Second)
	for gathered(t, registry)["stofuse_heap_live_peak_bytes"] < big {
		if time.Now().After(deadline) {
			t.Fatalf("stofuse_heap_live_peak_bytes = %v after collections with %d bytes live, want at least that",
				gathered(t, registry)["stofuse_heap_live_peak_bytes"], big)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	runtime.KeepAlive(keep)
	keep = nil
	runtime.GC()
	runtime.GC()
	values := gathered(t, registry)
	if live := values["go_gc_heap_live_bytes"]; live >= big {
		t.Errorf("go_gc_heap_live_bytes = %v once the %d bytes are collected", live, big)
	}
	if highest := values["stofuse_heap_live_peak_bytes"]; highest < big {
		t.Errorf("stofuse_heap_live_peak_bytes = %v once the heap shrank, want at least %d", highest, big)
	}
	if values["process_resident_memory_bytes"] <= 0 || values["go_memstats_heap_alloc_bytes"] <= 0 {
		t.Errorf("no resident memory or allocated heap in %v", values)
	}
}

// gathered is every unlabelled gauge and counter of registry, by name.
func gathered(t *testing.T, registry *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, family := range families {
		for _, m := range family.GetMetric() {
			if len(m.GetLabel()) > 0 {
				continue
			}
			switch {
			case m.GetGauge() != nil:
				values[family.GetName()] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				values[family.GetName()] = m.GetCounter().GetValue()
			}
		}
	}
	return values
}
