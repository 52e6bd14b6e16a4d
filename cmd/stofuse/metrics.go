package main

import (
	"errors"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stofuse/stofuse/diskaccess"
)

// metrics are a mount daemon's Prometheus metrics (stofuse mount
// --metrics ADDR), labelled with the mounted volume.
type metrics struct {
	volume                           string
	reads, readBytes, readErrors     prometheus.Counter
	stores, storedBytes, storeErrors prometheus.Counter
	readSeconds, storeSeconds        prometheus.Observer
	verified, corrupt                *prometheus.CounterVec
	heap                             *heapPeak
	server                           *http.Server
}

// startMetrics serves /metrics on addr (host:port; a loopback address is
// the sensible choice: the numbers name no secret, but they are the
// store's business).
func startMetrics(addr, volume string, cache *diskaccess.FrameCache) (*metrics, error) {
	registry := prometheus.NewRegistry()
	labels := prometheus.Labels{"volume": volume}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "stofuse", Name: name, Help: help, ConstLabels: labels})
		registry.MustRegister(c)
		return c
	}
	histogram := func(name, help string) prometheus.Observer {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "stofuse", Name: name, Help: help, ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 18)})
		registry.MustRegister(h)
		return h
	}
	m := &metrics{
		volume:       volume,
		reads:        counter("reads_total", "Reads of files through the mount."),
		readBytes:    counter("read_bytes_total", "Plaintext bytes read through the mount."),
		readErrors:   counter("read_errors_total", "Reads through the mount that failed."),
		stores:       counter("stores_total", "Files stored as blobs at close or fsync."),
		storedBytes:  counter("stored_bytes_total", "Plaintext bytes of the files stored."),
		storeErrors:  counter("store_errors_total", "Files whose storing failed."),
		readSeconds:  histogram("read_seconds", "Time to serve a read."),
		storeSeconds: histogram("store_seconds", "Time to store a file at close or fsync."),
		verified: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "stofuse", Name: "blobs_verified_total",
			Help: "Blobs checked by scrubs run by the daemon."}, []string{"volume"}),
		corrupt: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "stofuse", Name: "corruption_found_total",
			Help: "Damaged blobs met by reads and scrubs."}, []string{"volume"}),
	}
	registry.MustRegister(m.verified, m.corrupt)
	m.heap = registerMemory(registry)
	registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "stofuse", Name: "frame_cache_hits_total",
		Help: "Reads served from the cache of opened frames.", ConstLabels: labels}, func() float64 { return float64(cache.Stats().Hits) }))
	registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "stofuse", Name: "frame_cache_misses_total",
		Help: "Frames opened because the cache did not have them.", ConstLabels: labels}, func() float64 { return float64(cache.Stats().Misses) }))
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		m.heap.stop()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	m.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go m.server.Serve(listener)
	return m, nil
}

func (m *metrics) stop() {
	if m != nil {
		m.server.Close()
		m.heap.stop()
	}
}

// Read implements fusefs.Observer.
func (m *metrics) Read(bytes int, took time.Duration, errno syscall.Errno) {
	m.reads.Inc()
	m.readBytes.Add(float64(bytes))
	m.readSeconds.Observe(took.Seconds())
	if errno != 0 {
		m.readErrors.Inc()
	}
}

// Stored implements fusefs.Observer.
func (m *metrics) Stored(bytes int64, took time.Duration, errno syscall.Errno) {
	m.stores.Inc()
	m.storedBytes.Add(float64(bytes))
	m.storeSeconds.Observe(took.Seconds())
	if errno != 0 {
		m.storeErrors.Inc()
	}
}

// Corrupt implements fusefs.Observer: a read met damage (on the mounted
// volume).
func (m *metrics) Corrupt() { m.corrupt.WithLabelValues(m.volume).Inc() }

// Scrubbed implements store.Observer: it counts a blob a scrub in the
// daemon checked.
func (m *metrics) Scrubbed(volume string, err error) {
	m.verified.WithLabelValues(volume).Inc()
	if errors.Is(err, diskaccess.ErrCorrupt) {
		m.corrupt.WithLabelValues(volume).Inc()
	}
}
