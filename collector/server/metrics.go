package server

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
)

// metrics are the collector's Prometheus metrics, written in the text
// exposition format by hand: a handful of counters and one histogram do
// not need a client library.
type metrics struct {
	received   *counterVec
	duplicates *counterVec
	rejected   *counterVec
	// sealRefused and sealUnverified count reports refused for their
	// seal, and stored unsealed because their seal could not be verified
	// (seal.go).
	sealRefused    *counterVec
	sealUnverified *counterVec
	enrolments     *counterVec
	renewals       *counterVec
	latency        *histogramVec
}

func newMetrics() *metrics {
	return &metrics{
		received:   newCounterVec("ward_collector_reports_received_total", "Reports stored (re-deliveries not counted)."),
		duplicates: newCounterVec("ward_collector_reports_duplicate_total", "Re-delivered reports acknowledged without storing."),
		rejected:   newCounterVec("ward_collector_reports_rejected_total", "Reports refused, by reason (invalid, limit, unauthenticated, permission_denied, internal, other).", "reason"),
		sealRefused: newCounterVec("ward_collector_reports_seal_refused_total",
			"Reports refused for their seal, by reason (signature, unknown_key, downgrade, unchained).", "reason"),
		sealUnverified: newCounterVec("ward_collector_reports_seal_unverified_total",
			"Sealed reports stored unsealed: the seal did not verify once fields this collector does not know were dropped."),
		enrolments: newCounterVec("ward_collector_enrolments_total", "Enrolment attempts, by result (new, rebound, refused, invalid).", "result"),
		renewals:   newCounterVec("ward_collector_certificate_renewals_total", "Device certificates renewed, by step (issued, promoted, refused_handover).", "step"),
		latency: newHistogramVec("ward_collector_grpc_request_duration_seconds", "gRPC request latency, by method and status code.",
			[]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}, "method", "code"),
	}
}

func (m *metrics) write(w io.Writer) {
	m.received.write(w)
	m.duplicates.write(w)
	m.rejected.write(w)
	m.sealRefused.write(w)
	m.sealUnverified.write(w)
	m.enrolments.write(w)
	m.renewals.write(w)
	m.latency.write(w)
}

type counterVec struct {
	name, help string
	labels     []string
	mu         sync.Mutex
	values     map[string]float64 // key: rendered label set
}

func newCounterVec(name, help string, labels ...string) *counterVec {
	return &counterVec{name: name, help: help, labels: labels, values: map[string]float64{}}
}

// Inc adds one to the counter with these label values (in label order).
func (c *counterVec) Inc(values ...string) {
	k := labelSet(c.labels, values)
	c.mu.Lock()
	c.values[k]++
	c.mu.Unlock()
}

// Value returns the counter with these label values.
func (c *counterVec) Value(values ...string) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.values[labelSet(c.labels, values)]
}

func (c *counterVec) write(w io.Writer) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", c.name, c.help, c.name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.labels) == 0 && len(c.values) == 0 {
		fmt.Fprintf(w, "%s 0\n", c.name)
	}
	for _, k := range sortedKeys(c.values) {
		fmt.Fprintf(w, "%s%s %g\n", c.name, k, c.values[k])
	}
}

type histogram struct {
	counts []uint64 // per bucket, not cumulative
	sum    float64
	n      uint64
}

type histogramVec struct {
	name, help string
	labels     []string
	bounds     []float64
	mu         sync.Mutex
	values     map[string]*histogram
}

func newHistogramVec(name, help string, bounds []float64, labels ...string) *histogramVec {
	return &histogramVec{name: name, help: help, labels: labels, bounds: bounds, values: map[string]*histogram{}}
}

// Observe records v under these label values.
func (h *histogramVec) Observe(v float64, values ...string) {
	k := labelSet(h.labels, values)
	h.mu.Lock()
	defer h.mu.Unlock()
	hv, ok := h.values[k]
	if !ok {
		hv = &histogram{counts: make([]uint64, len(h.bounds))}
		h.values[k] = hv
	}
	if i := sort.SearchFloat64s(h.bounds, v); i < len(h.bounds) {
		hv.counts[i]++
	}
	hv.sum += v
	hv.n++
}

func (h *histogramVec) write(w io.Writer) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", h.name, h.help, h.name)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range sortedKeys(h.values) {
		hv := h.values[k]
		prefix := strings.TrimSuffix(k, "}")
		sep := ","
		if k == "" {
			prefix, sep = "{", ""
		}
		var cum uint64
		for i, b := range h.bounds {
			cum += hv.counts[i]
			fmt.Fprintf(w, "%s_bucket%s%sle=\"%g\"} %d\n", h.name, prefix, sep, b, cum)
		}
		fmt.Fprintf(w, "%s_bucket%s%sle=\"+Inf\"} %d\n", h.name, prefix, sep, hv.n)
		fmt.Fprintf(w, "%s_sum%s %g\n%s_count%s %d\n", h.name, k, hv.sum, h.name, k, hv.n)
	}
}

func labelSet(names, values []string) string {
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		v := ""
		if i < len(values) {
			v = values[i]
		}
		fmt.Fprintf(&b, "%s=%q", n, v)
	}
	b.WriteByte('}')
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
