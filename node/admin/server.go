// Package admin is the node's local administration socket and the
// commands that use it: `nfsimap ring`, `where USER`, `who`, `kick USER`
// and `drain`.
//
// The socket is a unix socket (mode 0600, so only its owner, normally
// root, can use it) that speaks JSON over HTTP:
//
//	GET  /ring             RingReport: members, state, share of users
//	GET  /where?user=NAME  httpapi.RingInfo: the user's preference list
//	GET  /who              []Entry: users and connections on this node
//	POST /kick?user=NAME   KickResult: that user's connections are ended
//	POST /drain            drains the node (returns when it is done)
//
// Errors come back as a non-2xx status with the message as plain text.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nfsimap/nfsimap/node/httpapi"
	"github.com/nfsimap/nfsimap/ring"
)

// Config configures the admin socket's server.
type Config struct {
	// SocketPath is the unix socket's path. Its directory is created
	// (mode 0700) when missing. Required.
	SocketPath string
	// NodeName is this node's name in the ring.
	NodeName string
	// Ring returns the current ring snapshot; nil means no cluster.
	Ring func() *ring.Snapshot
	// Registry lists the node's connections; nil means none are tracked.
	Registry *Registry
	// Drain drains the node: it returns when the node has told its
	// clients BYE and left the ring, or ctx ended. nil: draining is not
	// available here.
	Drain func(ctx context.Context) error
	// ShareSample is how many sample user names estimate each member's
	// share of users. 0 means 100,000.
	ShareSample int
	// Logger receives the commands run. nil: discard.
	Logger *slog.Logger
}

// Validate reports an unusable configuration.
func (c Config) Validate() error {
	if c.SocketPath == "" {
		return errors.New("admin: SocketPath is empty")
	}
	if c.ShareSample < 0 {
		return errors.New("admin: ShareSample is negative")
	}
	return nil
}

// MemberShare is a ring member with its share of users.
type MemberShare struct {
	ring.Member
	// Share is the estimated fraction of users the member serves now.
	Share float64 `json:"share"`
}

// RingReport is the answer of GET /ring.
type RingReport struct {
	Self    string        `json:"self"`
	Epoch   uint64        `json:"epoch"`
	Members []MemberShare `json:"members"`
}

// KickResult is the answer of POST /kick.
type KickResult struct {
	User   string `json:"user"`
	Kicked int    `json:"kicked"`
}

// Server serves the admin socket.
type Server struct {
	cfg  Config
	log  *slog.Logger
	ln   net.Listener
	http *http.Server
}

// ErrInUse is returned by Listen when a live node already answers on the
// socket.
var ErrInUse = errors.New("admin: socket in use by a running node")

// Listen creates the socket. A stale socket file left by a dead node is
// replaced; one a live node answers on is not (ErrInUse).
func Listen(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ShareSample == 0 {
		cfg.ShareSample = 100_000
	}
	if err := os.MkdirAll(filepath.Dir(cfg.SocketPath), 0o700); err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	if _, err := os.Lstat(cfg.SocketPath); err == nil {
		if c, err := net.DialTimeout("unix", cfg.SocketPath, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%w: %s", ErrInUse, cfg.SocketPath)
		}
		if err := os.Remove(cfg.SocketPath); err != nil {
			return nil, fmt.Errorf("admin: removing stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", cfg.SocketPath)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	if err := os.Chmod(cfg.SocketPath, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ring", s.ring)
	mux.HandleFunc("GET /where", s.where)
	mux.HandleFunc("GET /who", s.who)
	mux.HandleFunc("POST /kick", s.kick)
	mux.HandleFunc("POST /drain", s.drain)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// Serve answers requests until Close; it returns nil then.
func (s *Server) Serve() error {
	err := s.http.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server, ends requests in progress (a running drain goes
// on) and removes the socket.
func (s *Server) Close() error {
	err := s.http.Close()
	os.Remove(s.cfg.SocketPath)
	return err
}

// Addr returns the socket's path.
func (s *Server) Addr() string { return s.cfg.SocketPath }

func (s *Server) snapshot() *ring.Snapshot {
	if s.cfg.Ring == nil {
		return nil
	}
	return s.cfg.Ring()
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (s *Server) ring(w http.ResponseWriter, _ *http.Request) {
	snap := s.snapshot()
	rep := RingReport{Self: s.cfg.NodeName, Epoch: snap.Epoch(), Members: []MemberShare{}}
	shares := snap.Shares(s.cfg.ShareSample)
	for _, m := range snap.Members() {
		rep.Members = append(rep.Members, MemberShare{Member: m, Share: shares[m.Name]})
	}
	writeJSON(w, rep)
}

func (s *Server) where(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	if user == "" {
		http.Error(w, "want ?user=NAME", http.StatusBadRequest)
		return
	}
	writeJSON(w, httpapi.NewRingInfo(s.snapshot(), s.cfg.NodeName, user))
}

func (s *Server) who(w http.ResponseWriter, _ *http.Request) {
	list := []Entry{}
	if s.cfg.Registry != nil {
		list = s.cfg.Registry.List()
	}
	writeJSON(w, list)
}

func (s *Server) kick(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	if user == "" {
		http.Error(w, "want ?user=NAME", http.StatusBadRequest)
		return
	}
	n := 0
	if s.cfg.Registry != nil {
		n = s.cfg.Registry.Kick(user)
	}
	s.log.Info("admin: kick", "user", user, "connections", n)
	writeJSON(w, KickResult{User: user, Kicked: n})
}

func (s *Server) drain(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Drain == nil {
		http.Error(w, "draining is not available on this node", http.StatusNotImplemented)
		return
	}
	s.log.Info("admin: drain requested")
	// The drain goes on when the client goes away: it is not tied to the
	// request's context.
	errc := make(chan error, 1)
	go func() { errc <- s.cfg.Drain(context.WithoutCancel(r.Context())) }()
	select {
	case err := <-errc:
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]bool{"drained": true})
	case <-r.Context().Done():
	}
}
