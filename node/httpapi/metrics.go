package httpapi

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nfsimap/nfsimap/ring"
)

// Metrics is the node's set of Prometheus metrics. The parts of the node
// feed it through its methods, which are safe for concurrent use and do
// nothing on a nil *Metrics (so a part can run without metrics).
type Metrics struct {
	// Connections is the number of open client connections
	// (nfsimap_connections), by kind: "local" (served here), "proxied"
	// (relayed to a peer) or "internal" (arrived from a peer's proxy).
	Connections *prometheus.GaugeVec
	// Logins counts login attempts by result: "ok", "failed" (bad
	// credentials), "error" (a server fault) (nfsimap_logins_total).
	Logins *prometheus.CounterVec
	// ProxiedConns counts connections relayed to a peer, by peer name and
	// result: "ok", or "failed" when the peer did not take the user
	// (nfsimap_proxied_connections_total).
	ProxiedConns *prometheus.CounterVec
	// Commands is the latency of IMAP commands by command name
	// (nfsimap_command_duration_seconds).
	Commands *prometheus.HistogramVec
	// SpoolOps counts operations on the spool by operation name
	// (nfsimap_spool_operations_total).
	SpoolOps *prometheus.CounterVec
	// LockWaits is how long dot-lock acquisitions waited
	// (nfsimap_lock_wait_seconds).
	LockWaits prometheus.Histogram
	// RingMembers is the number of ring members by state: "alive",
	// "draining" (nfsimap_ring_members).
	RingMembers *prometheus.GaugeVec
}

// Connection kinds for Metrics.Connections.
const (
	ConnLocal    = "local"
	ConnProxied  = "proxied"
	ConnInternal = "internal"
)

// Login results for Metrics.Logins.
const (
	LoginOK     = "ok"
	LoginFailed = "failed"
	LoginError  = "error"
)

// NewMetrics makes the metrics and registers them on reg (never the
// global registry: pass the registry the HTTP handler serves).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("httpapi: NewMetrics needs a registerer")
	}
	m := &Metrics{
		Connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nfsimap_connections",
			Help: "Open client connections by kind (local, proxied to a peer, internal from a peer).",
		}, []string{"kind"}),
		Logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nfsimap_logins_total",
			Help: "Login attempts by result (ok, failed, error).",
		}, []string{"result"}),
		ProxiedConns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nfsimap_proxied_connections_total",
			Help: "Connections relayed to a peer node, by peer and result (ok, failed).",
		}, []string{"peer", "result"}),
		Commands: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "nfsimap_command_duration_seconds",
			Help:    "Latency of IMAP commands by command name.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"command"}),
		SpoolOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nfsimap_spool_operations_total",
			Help: "Operations on the spool by operation.",
		}, []string{"op"}),
		LockWaits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "nfsimap_lock_wait_seconds",
			Help:    "Time spent waiting for dot-locks on the spool.",
			Buckets: []float64{.0001, .001, .005, .01, .05, .1, .5, 1, 5, 10, 30},
		}),
		RingMembers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nfsimap_ring_members",
			Help: "Ring members by state (alive, draining).",
		}, []string{"state"}),
	}
	for _, c := range []prometheus.Collector{m.Connections, m.Logins, m.ProxiedConns, m.Commands, m.SpoolOps, m.LockWaits, m.RingMembers} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("httpapi: register metrics: %w", err)
		}
	}
	// Show the label values with zero before anything happened.
	for _, k := range []string{ConnLocal, ConnProxied, ConnInternal} {
		m.Connections.WithLabelValues(k)
	}
	for _, r := range []string{LoginOK, LoginFailed, LoginError} {
		m.Logins.WithLabelValues(r)
	}
	for _, s := range []ring.State{ring.StateAlive, ring.StateDraining} {
		m.RingMembers.WithLabelValues(s.String())
	}
	return m, nil
}

// ConnOpened counts an open connection of a kind and returns the function
// that counts it closed (call it once).
func (m *Metrics) ConnOpened(kind string) (closed func()) {
	if m == nil {
		return func() {}
	}
	g := m.Connections.WithLabelValues(kind)
	g.Inc()
	return g.Dec
}

// Login counts a login attempt.
func (m *Metrics) Login(result string) {
	if m != nil {
		m.Logins.WithLabelValues(result).Inc()
	}
}

// Proxied counts a connection relayed (ok true) or refused by peer.
func (m *Metrics) Proxied(peer string, ok bool) {
	if m == nil {
		return
	}
	r := "ok"
	if !ok {
		r = "failed"
	}
	m.ProxiedConns.WithLabelValues(peer, r).Inc()
}

// Command records one command's latency. name should be the upper-case
// command name from a fixed set (an unknown one is best given as "OTHER"),
// so the label values stay few.
func (m *Metrics) Command(name string, took time.Duration) {
	if m != nil {
		m.Commands.WithLabelValues(name).Observe(took.Seconds())
	}
}

// SpoolOp counts n operations op on the spool.
func (m *Metrics) SpoolOp(op string, n int) {
	if m != nil {
		m.SpoolOps.WithLabelValues(op).Add(float64(n))
	}
}

// LockWait records how long a dot-lock acquisition waited.
func (m *Metrics) LockWait(took time.Duration) {
	if m != nil {
		m.LockWaits.Observe(took.Seconds())
	}
}

// ObserveRing sets the ring gauges from a snapshot.
func (m *Metrics) ObserveRing(s *ring.Snapshot) {
	if m == nil {
		return
	}
	counts := map[ring.State]int{ring.StateAlive: 0, ring.StateDraining: 0}
	for _, mem := range s.Members() {
		counts[mem.State]++
	}
	for st, n := range counts {
		m.RingMembers.WithLabelValues(st.String()).Set(float64(n))
	}
}
