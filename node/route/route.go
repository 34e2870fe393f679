// Package route decides where a logged-in user's connection is served:
// here, or proxied to a peer chosen by the ring.
package route

import (
	"github.com/nfsimap/nfsimap/ring"
)

// MaxPeers is how many peers a connection tries before it is served
// locally after all.
const MaxPeers = 2

// Decision is where to serve one connection. With no Peers, serve it
// locally. Otherwise try the peers in order and serve locally if none of
// them answers.
type Decision struct {
	Peers []ring.Member
}

// Local reports whether the connection is served on this node at once.
func (d Decision) Local() bool { return len(d.Peers) == 0 }

// Decide routes user's connection on the node named self, using snapshot s
// (nil means no ring: serve locally).
//
// A connection that arrived through the proxy (proxied) is always served
// where it lands, so two nodes whose views of the ring disagree for a
// moment cannot bounce a connection between them. Otherwise Decide walks
// the user's preference list, skipping members that are not alive: if
// this node comes before any alive peer, it serves locally; else the alive
// peers ahead of this node, at most MaxPeers, are tried in order, and this
// node is the last resort.
func Decide(s *ring.Snapshot, self, user string, proxied bool) Decision {
	if proxied || s.Len() == 0 {
		return Decision{}
	}
	// The first few entries nearly always settle it; the full list is
	// needed only when several of them are draining or self is far down.
	var buf [4]ring.Member
	list := s.Owners(user, len(buf), buf[:0])
	if d, done := walk(list, self); done || len(list) == s.Len() {
		return d
	}
	d, _ := walk(s.Owners(user, 0, nil), self)
	return d
}

// walk scans a prefix of the preference list. done is false when the
// prefix ran out before the decision was certain.
func walk(list []ring.Member, self string) (d Decision, done bool) {
	for _, m := range list {
		if m.Name == self {
			if m.State == ring.StateAlive || len(d.Peers) > 0 {
				return d, true
			}
			continue // this node is draining: prefer alive peers
		}
		if m.State != ring.StateAlive {
			continue
		}
		d.Peers = append(d.Peers, m)
		if len(d.Peers) == MaxPeers {
			return d, true
		}
	}
	return d, false
}
