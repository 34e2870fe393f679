package admin

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// Entry describes one live client connection for `nfsimap who`.
type Entry struct {
	// ID is the connection's ID in the node's logs.
	ID string `json:"id"`
	// User is the login name.
	User string `json:"user"`
	// Remote is the client's address (as told by a PROXY header or a
	// peer's proxy when there was one).
	Remote string `json:"remote"`
	// Since is when the user logged in.
	Since time.Time `json:"since"`
	// Kind is "local" (served here from a client listener), "proxied"
	// (relayed from here to Peer) or "internal" (arrived from a peer's
	// proxy and served here).
	Kind string `json:"kind"`
	// Peer is the node the connection is relayed to (Kind "proxied").
	Peer string `json:"peer,omitempty"`
	// TLS says whether the client connection is encrypted.
	TLS bool `json:"tls"`
}

// Registry lists the live connections of a node. The parts that own
// connections (the front for local sessions, the cluster for proxied
// ones) add them at login and remove them when they end. Safe for
// concurrent use; its methods do not block on connections.
type Registry struct {
	mu    sync.Mutex // guards conns
	conns map[*slot]struct{}
}

type slot struct {
	e    Entry
	kick func()
}

// NewRegistry makes an empty registry.
func NewRegistry() *Registry {
	return &Registry{conns: make(map[*slot]struct{})}
}

// Add records a connection. kick is called from another goroutine to end
// it (again if the user is kicked again before the connection is gone):
// it should say BYE when it can and close the connection, and must not
// block for long. remove takes the entry out again; call it when
// the connection ends (calling it twice is harmless).
func (r *Registry) Add(e Entry, kick func()) (remove func()) {
	s := &slot{e: e, kick: kick}
	r.mu.Lock()
	r.conns[s] = struct{}{}
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.conns, s)
		r.mu.Unlock()
	}
}

// List returns the connections sorted by user, then login time.
func (r *Registry) List() []Entry {
	r.mu.Lock()
	out := make([]Entry, 0, len(r.conns))
	for s := range r.conns {
		out = append(out, s.e)
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.User, b.User), a.Since.Compare(b.Since), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Len returns the number of connections.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// Kick ends all connections of user and returns how many it asked to end.
// The kick functions run outside the registry's lock; their entries stay
// until the connections remove them.
func (r *Registry) Kick(user string) int {
	var kicks []func()
	r.mu.Lock()
	for s := range r.conns {
		if s.e.User == user && s.kick != nil {
			kicks = append(kicks, s.kick)
		}
	}
	r.mu.Unlock()
	for _, k := range kicks {
		k()
	}
	return len(kicks)
}
