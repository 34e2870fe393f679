package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Latencies are kept in log-spaced buckets: bucket i holds durations in
// [base*growth^i, base*growth^(i+1)). With 2% growth a percentile read from a
// bucket is within 2% of the true value, and the memory per histogram is
// fixed whatever the run length.
const (
	histBase    = float64(time.Microsecond)
	histGrowth  = 1.02
	histBuckets = 1100 // 1µs * 1.02^1100 is about 3 hours
)

var logGrowth = math.Log(histGrowth)

type histogram struct {
	counts [histBuckets]uint32
	n      uint64
	sum    time.Duration
	max    time.Duration
}

func bucketOf(d time.Duration) int {
	if float64(d) <= histBase {
		return 0
	}
	i := int(math.Log(float64(d)/histBase) / logGrowth)
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

func (h *histogram) add(d time.Duration) {
	h.counts[bucketOf(d)]++
	h.n++
	h.sum += d
	if d > h.max {
		h.max = d
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	if o.max > h.max {
		h.max = o.max
	}
}

// quantile returns the upper edge of the bucket holding quantile q (0..1),
// capped at the largest value seen.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen >= rank {
			d := time.Duration(histBase * math.Pow(histGrowth, float64(i+1)))
			if d > h.max {
				d = h.max
			}
			return d
		}
	}
	return h.max
}

// errKind sorts command failures for the report.
type errKind string

const (
	errNo      errKind = "NO"
	errBad     errKind = "BAD"
	errNetwork errKind = "network"
	errTimeout errKind = "timeout"
	errOther   errKind = "other"
)

type cmdStats struct {
	hist   histogram
	errors map[errKind]uint64
	// samples keeps the first error message of each kind, so a report
	// says what failed, not only how often.
	samples map[errKind]string
}

// second is one second of the run's timeline, for the plot.
type second struct {
	commands uint64
	errors   uint64
	hist     histogram
}

// Stats gathers latencies per command name and a per-second timeline. It is
// safe for concurrent use; each record takes one short mutex hold.
type Stats struct {
	start time.Time

	mu       sync.Mutex
	commands map[string]*cmdStats
	timeline []*second
	logins   map[string]uint64 // "entry -> serving node" pairs
	proxied  uint64            // logins served by another node than the entry node
}

func newStats(start time.Time) *Stats {
	return &Stats{start: start, commands: map[string]*cmdStats{}, logins: map[string]uint64{}}
}

func (s *Stats) record(name string, at time.Time, d time.Duration, kind errKind, err error) {
	idx := int(at.Sub(s.start) / time.Second)
	if idx < 0 {
		idx = 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.commands[name]
	if cs == nil {
		cs = &cmdStats{errors: map[errKind]uint64{}, samples: map[errKind]string{}}
		s.commands[name] = cs
	}
	for len(s.timeline) <= idx {
		s.timeline = append(s.timeline, &second{})
	}
	sec := s.timeline[idx]
	if kind != "" {
		cs.errors[kind]++
		if _, ok := cs.samples[kind]; !ok && err != nil {
			cs.samples[kind] = fmt.Sprintf("%s: %v", at.Format("15:04:05.000"), err)
		}
		sec.errors++
		return
	}
	cs.hist.add(d)
	sec.commands++
	sec.hist.add(d)
}

// servedBy counts a login by entry point (node name in cluster mode, else
// the address) and serving node, and whether it was proxied.
func (s *Stats) servedBy(entry, served string, proxied bool) {
	s.mu.Lock()
	s.logins[entry+" -> "+served]++
	if proxied {
		s.proxied++
	}
	s.mu.Unlock()
}

// totals returns the number of commands and errors so far.
func (s *Stats) totals() (cmds, errs uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cs := range s.commands {
		cmds += cs.hist.n
		for _, n := range cs.errors {
			errs += n
		}
	}
	return cmds, errs
}

// CommandReport is one row of the final table.
type CommandReport struct {
	Command string            `json:"command"`
	Count   uint64            `json:"count"`
	PerSec  float64           `json:"per_second"`
	P50     float64           `json:"p50_ms"`
	P90     float64           `json:"p90_ms"`
	P99     float64           `json:"p99_ms"`
	Max     float64           `json:"max_ms"`
	Errors  map[string]uint64 `json:"errors,omitempty"`
	// ErrorSamples holds the first error of each kind (time: message).
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
}

// SecondReport is one point of the timeline.
type SecondReport struct {
	Second   int     `json:"second"`
	Commands uint64  `json:"commands"`
	Errors   uint64  `json:"errors"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (s *Stats) proxiedLogins() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proxied
}

func (s *Stats) report(elapsed time.Duration) ([]CommandReport, []SecondReport, map[string]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rows []CommandReport
	var all histogram
	allErr := map[string]uint64{}
	for name, cs := range s.commands {
		all.merge(&cs.hist)
		r := CommandReport{
			Command: name, Count: cs.hist.n,
			PerSec: float64(cs.hist.n) / elapsed.Seconds(),
			P50:    ms(cs.hist.quantile(0.5)), P90: ms(cs.hist.quantile(0.9)),
			P99: ms(cs.hist.quantile(0.99)), Max: ms(cs.hist.max),
		}
		for k, n := range cs.errors {
			if r.Errors == nil {
				r.Errors = map[string]uint64{}
			}
			r.Errors[string(k)] += n
			allErr[string(k)] += n
			if m, ok := cs.samples[k]; ok {
				if r.ErrorSamples == nil {
					r.ErrorSamples = map[string]string{}
				}
				r.ErrorSamples[string(k)] = m
			}
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Command < rows[j].Command })
	total := CommandReport{
		Command: "ALL", Count: all.n, PerSec: float64(all.n) / elapsed.Seconds(),
		P50: ms(all.quantile(0.5)), P90: ms(all.quantile(0.9)),
		P99: ms(all.quantile(0.99)), Max: ms(all.max),
	}
	if len(allErr) > 0 {
		total.Errors = allErr
	}
	rows = append(rows, total)

	secs := make([]SecondReport, len(s.timeline))
	for i, sec := range s.timeline {
		secs[i] = SecondReport{Second: i, Commands: sec.commands, Errors: sec.errors,
			P50: ms(sec.hist.quantile(0.5)), P99: ms(sec.hist.quantile(0.99))}
	}
	served := make(map[string]uint64, len(s.logins))
	for k, v := range s.logins {
		served[k] = v
	}
	return rows, secs, served
}

func writeTable(w io.Writer, rows []CommandReport) {
	fmt.Fprintf(w, "%-14s %10s %10s %9s %9s %9s %9s  %s\n",
		"command", "count", "per sec", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors")
	for _, r := range rows {
		var errs []string
		for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
			errs = append(errs, fmt.Sprintf("%s=%d", k, r.Errors[k]))
		}
		fmt.Fprintf(w, "%-14s %10d %10.1f %9.3f %9.3f %9.3f %9.3f  %s\n",
			r.Command, r.Count, r.PerSec, r.P50, r.P90, r.P99, r.Max, strings.Join(errs, " "))
	}
	first := true
	for _, r := range rows {
		for _, k := range slices.Sorted(maps.Keys(r.ErrorSamples)) {
			if first {
				fmt.Fprintln(w, "first error of each kind:")
				first = false
			}
			fmt.Fprintf(w, "  %s %s at %s\n", r.Command, k, r.ErrorSamples[k])
		}
	}
}
