// Package httpapi is nfsimap's HTTP endpoint for layer-4 switches,
// monitoring and tools, served on its own port:
//
//	/healthz  200 when the node is alive: the spool answers (a stat of its
//	          root) and a dot-lock round trip on it works, within a timeout
//	/readyz   200 when the node takes new clients: it serves and is not
//	          draining (switches stop sending clients when it fails)
//	/metrics  Prometheus metrics of the node (its own registry)
//	/ring     the ring as JSON; ?user=NAME adds the user's preference list
//
// It also defines Metrics, the metrics set the other parts feed.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nfsimap/nfsimap/nfslock"
	"github.com/nfsimap/nfsimap/node/route"
	"github.com/nfsimap/nfsimap/ring"
)

// Config configures the Handler.
type Config struct {
	// NodeName is this node's name in the ring; it names the health lock
	// file (so nodes never wait on each other's check) and is shown by
	// /ring. Required.
	NodeName string
	// SpoolRoot is a directory on the spool that /healthz stats. ""
	// means no spool check (/healthz then only says the process runs).
	SpoolRoot string
	// HealthDir is the directory on the spool where /healthz takes and
	// releases a dot-lock (file HealthDir/<NodeName>.health). It is
	// created when missing. "" means SpoolRoot/.nfsimap-health.
	HealthDir string
	// HealthTimeout bounds one spool check; a hung NFS mount fails it.
	// 0 means 5 s.
	HealthTimeout time.Duration
	// Lock are the dot-lock options for the check (Timeout is capped by
	// HealthTimeout). The zero value is nfslock's defaults.
	Lock nfslock.Options
	// Ring returns the current ring snapshot for /ring; nil means no
	// cluster (/ring shows an empty ring).
	Ring func() *ring.Snapshot
	// Gatherer is what /metrics serves, normally the *prometheus.Registry
	// that Metrics were registered on. nil: /metrics serves 404.
	Gatherer prometheus.Gatherer
	// Logger receives failed checks. nil: discard.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults; NodeName must still be set.
func DefaultConfig() Config {
	return Config{HealthTimeout: 5 * time.Second}
}

// Validate reports an unusable configuration.
func (c Config) Validate() error {
	if c.NodeName == "" {
		return errors.New("httpapi: NodeName is empty")
	}
	if filepath.Base(c.NodeName) != c.NodeName || c.NodeName == "." || c.NodeName == ".." {
		return fmt.Errorf("httpapi: NodeName %q cannot name a file", c.NodeName)
	}
	if c.HealthTimeout < 0 {
		return errors.New("httpapi: HealthTimeout is negative")
	}
	if err := c.Lock.Validate(); err != nil {
		return fmt.Errorf("httpapi: %w", err)
	}
	return nil
}

// Handler serves the endpoints. Its methods are safe for concurrent use.
type Handler struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux

	serving  atomic.Bool
	draining atomic.Bool

	// checkMu guards inflight: concurrent /healthz requests share one
	// running spool check.
	checkMu  sync.Mutex
	inflight *check
}

// check is one spool check; done is closed when err is set.
type check struct {
	done chan struct{}
	err  error
}

var _ http.Handler = (*Handler)(nil)

// New makes the handler. The node starts not ready: call SetServing(true)
// once the listeners accept clients.
func New(cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.HealthTimeout == 0 {
		cfg.HealthTimeout = DefaultConfig().HealthTimeout
	}
	if cfg.HealthDir == "" && cfg.SpoolRoot != "" {
		cfg.HealthDir = filepath.Join(cfg.SpoolRoot, ".nfsimap-health")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("GET /readyz", h.readyz)
	h.mux.HandleFunc("GET /ring", h.ring)
	if cfg.Gatherer != nil {
		h.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{ErrorLog: slogPrinter{h.log}}))
	}
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// SetServing says whether the node's client listeners accept clients.
func (h *Handler) SetServing(on bool) { h.serving.Store(on) }

// SetDraining says whether the node is draining (readiness fails).
func (h *Handler) SetDraining(on bool) { h.draining.Store(on) }

// Errors of Ready.
var (
	ErrNotServing = errors.New("httpapi: not serving yet")
	ErrDraining   = errors.New("httpapi: draining")
)

// Ready returns nil when the node takes new clients.
func (h *Handler) Ready() error {
	if h.draining.Load() {
		return ErrDraining
	}
	if !h.serving.Load() {
		return ErrNotServing
	}
	return nil
}

func (h *Handler) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := h.Ready(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
	if err := h.CheckSpool(r.Context()); err != nil {
		h.log.Warn("health check failed", "err", err)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// ErrHealthTimeout is returned by CheckSpool when the spool did not answer
// within HealthTimeout.
var ErrHealthTimeout = errors.New("httpapi: spool check timed out")

// CheckSpool stats the spool root and takes and releases a dot-lock on it,
// within HealthTimeout. Concurrent calls share one check. A check stuck
// on a hung mount keeps running in the background and the callers get
// ErrHealthTimeout; the next call after it ends starts a fresh one.
func (h *Handler) CheckSpool(ctx context.Context) error {
	if h.cfg.SpoolRoot == "" {
		return nil
	}
	h.checkMu.Lock()
	c := h.inflight
	if c == nil {
		c = &check{done: make(chan struct{})}
		h.inflight = c
		go func() {
			c.err = h.runCheck()
			h.checkMu.Lock()
			h.inflight = nil
			h.checkMu.Unlock()
			close(c.done)
		}()
	}
	h.checkMu.Unlock()
	t := time.NewTimer(h.cfg.HealthTimeout)
	defer t.Stop()
	select {
	case <-c.done:
		return c.err
	case <-t.C:
		return fmt.Errorf("%w after %v", ErrHealthTimeout, h.cfg.HealthTimeout)
	case <-ctx.Done():
		return fmt.Errorf("httpapi: spool check: %w", ctx.Err())
	}
}

// runCheck does the I/O of a spool check.
func (h *Handler) runCheck() error {
	fi, err := os.Stat(h.cfg.SpoolRoot)
	if err != nil {
		return fmt.Errorf("httpapi: spool root: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("httpapi: spool root %s is not a directory", h.cfg.SpoolRoot)
	}
	if err := os.Mkdir(h.cfg.HealthDir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("httpapi: health directory: %w", err)
	}
	opt := h.cfg.Lock
	opt.NoAutoRefresh = true
	if opt.Timeout == 0 || opt.Timeout > h.cfg.HealthTimeout {
		opt.Timeout = h.cfg.HealthTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.HealthTimeout)
	defer cancel()
	l, err := nfslock.Acquire(ctx, filepath.Join(h.cfg.HealthDir, h.cfg.NodeName+".health"), opt)
	if err != nil {
		return fmt.Errorf("httpapi: dot-lock on the spool: %w", err)
	}
	if err := l.Release(); err != nil {
		return fmt.Errorf("httpapi: dot-lock release on the spool: %w", err)
	}
	return nil
}

// RingInfo is the JSON of /ring.
type RingInfo struct {
	// Self is this node's name.
	Self string `json:"self"`
	// Ring is the snapshot: {"epoch": N, "members": [...]}.
	Ring *ring.Snapshot `json:"ring"`
	// User, Preference, ServedBy and Route are set with ?user=: the user's
	// preference list (all members, best first, draining ones included),
	// the first alive member, and where this node would route a new login
	// ("local" or the peers it would try, in order).
	User       string        `json:"user,omitempty"`
	Preference []ring.Member `json:"preference,omitempty"`
	ServedBy   string        `json:"served_by,omitempty"`
	Route      []string      `json:"route,omitempty"`
}

// NewRingInfo describes snapshot s as seen from node self, with user's
// preference list when user is not "". Shared with the admin commands.
func NewRingInfo(s *ring.Snapshot, self, user string) RingInfo {
	if s == nil {
		s, _ = ring.NewSnapshot(nil)
	}
	info := RingInfo{Self: self, Ring: s}
	if user == "" {
		return info
	}
	info.User = user
	info.Preference = s.Owners(user, 0, nil)
	if info.Preference == nil {
		info.Preference = []ring.Member{}
	}
	if m, ok := s.FirstAlive(user); ok {
		info.ServedBy = m.Name
	}
	d := route.Decide(s, self, user, false)
	if d.Local() {
		info.Route = []string{"local"}
	}
	for _, p := range d.Peers {
		info.Route = append(info.Route, p.Name)
	}
	return info
}

func (h *Handler) ring(w http.ResponseWriter, r *http.Request) {
	var s *ring.Snapshot
	if h.cfg.Ring != nil {
		s = h.cfg.Ring()
	}
	info := NewRingInfo(s, h.cfg.NodeName, r.URL.Query().Get("user"))
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(info); err != nil {
		h.log.Debug("writing /ring failed", "err", err)
	}
}

// slogPrinter gives promhttp's error log to slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics: " + fmt.Sprint(v...)) }
