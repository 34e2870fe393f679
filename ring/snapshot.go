package ring

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// State is what a member says about itself in its metadata.
type State uint8

const (
	// StateAlive: the member serves users and takes new connections.
	StateAlive State = 1
	// StateDraining: the member is still up but wants no new users (it is
	// being upgraded or taken out). It stays in the snapshot, so its place
	// in every preference list is kept, but routing skips it.
	StateDraining State = 2
)

// String returns "alive", "draining" or "state(N)".
func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateDraining:
		return "draining"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Valid reports whether s is one of the known states.
func (s State) Valid() bool { return s == StateAlive || s == StateDraining }

// MarshalText writes the state as its name.
func (s State) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("ring: cannot marshal %s", s)
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads "alive" or "draining".
func (s *State) UnmarshalText(b []byte) error {
	switch string(b) {
	case "alive":
		*s = StateAlive
	case "draining":
		*s = StateDraining
	default:
		return fmt.Errorf("ring: unknown member state %q", b)
	}
	return nil
}

// Member is one node of the cluster as the ring sees it. It is a plain
// value: copying it is cheap and allocates nothing.
type Member struct {
	// Name is the node's unique name in the cluster (the memberlist node
	// name). The hash is computed over it, so renaming a node moves its
	// users.
	Name string `json:"name"`
	// Addr is the node's internal IMAP address ("host:port") that peers
	// proxy to.
	Addr string `json:"addr"`
	// State is alive or draining.
	State State `json:"state"`
	// Version is the software version the node runs ("" if not known).
	Version string `json:"version,omitempty"`
	// Gossip is the node's gossip address ("ip:port"); "" in snapshots
	// built by hand.
	Gossip string `json:"gossip,omitempty"`
}

// Weight is the rendezvous weight of node for user: the 64-bit xxHash
// (XXH64, seed 0, as in github.com/cespare/xxhash/v2) of the bytes of the
// node name, one zero byte, then the bytes of the user name:
//
//	weight = XXH64(node || 0x00 || user)
//
// The zero byte keeps ("ab", "c") and ("a", "bc") apart. A user's
// preference list is the members ordered by weight, highest first; equal
// weights are ordered by node name, lower first. The user name is hashed
// exactly as given: callers pass the canonical login name.
//
// It is computed by sum64Pair without joining the strings; the tests check
// it against xxhash.Sum64 of the concatenation. Changing any of this
// reroutes users between nodes running different versions during a
// rolling upgrade; the golden vectors in the tests pin it.
func Weight(node, user string) uint64 {
	var buf [256]byte
	key := append(buf[:0], node...) // allocates only for names over 255 bytes
	key = append(key, 0)
	return sum64Pair(key, user)
}

// hashKey returns node + the separator byte, the first part of every
// weight of the node. Snapshots keep one per member.
func hashKey(node string) []byte {
	return append([]byte(node), 0)
}

// before reports whether a member with weight wa and name na comes before
// one with weight wb and name nb in a preference list.
func before(wa uint64, na string, wb uint64, nb string) bool {
	if wa != wb {
		return wa > wb
	}
	return na < nb
}

// Snapshot is an immutable view of the ring: a set of members with unique
// names. All its methods are safe for concurrent use; lookups take no
// locks and allocate nothing.
type Snapshot struct {
	members []Member // sorted by name; never modified after construction
	keys    [][]byte // keys[i] is hashKey(members[i].Name)
	epoch   uint64
}

// ErrDuplicateMember is returned by NewSnapshot when two members share a name.
var ErrDuplicateMember = errors.New("ring: duplicate member name")

// ErrInvalidMember is returned by NewSnapshot for a member without a name
// or with an unknown state.
var ErrInvalidMember = errors.New("ring: invalid member")

// NewSnapshot builds a snapshot of the given members. Their order does not
// matter; names must be unique and non-empty and states valid. The slice is
// copied.
func NewSnapshot(members []Member) (*Snapshot, error) {
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	for i, m := range ms {
		if m.Name == "" {
			return nil, fmt.Errorf("%w: empty name", ErrInvalidMember)
		}
		if !m.State.Valid() {
			return nil, fmt.Errorf("%w: %q has %s", ErrInvalidMember, m.Name, m.State)
		}
		if i > 0 && ms[i-1].Name == m.Name {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateMember, m.Name)
		}
	}
	keys := make([][]byte, len(ms))
	for i, m := range ms {
		keys[i] = hashKey(m.Name)
	}
	return &Snapshot{members: ms, keys: keys}, nil
}

// Len returns the number of members.
func (s *Snapshot) Len() int {
	if s == nil {
		return 0
	}
	return len(s.members)
}

// Epoch counts the rebuilds of the ring that produced this snapshot
// (0 for snapshots built with NewSnapshot).
func (s *Snapshot) Epoch() uint64 {
	if s == nil {
		return 0
	}
	return s.epoch
}

// Members returns a copy of the members, sorted by name.
func (s *Snapshot) Members() []Member {
	if s == nil {
		return nil
	}
	return slices.Clone(s.members)
}

// Member returns the member with the given name.
func (s *Snapshot) Member(name string) (Member, bool) {
	if s == nil {
		return Member{}, false
	}
	i, ok := slices.BinarySearchFunc(s.members, name, func(m Member, n string) int { return strings.Compare(m.Name, n) })
	if !ok {
		return Member{}, false
	}
	return s.members[i], true
}

// maxStackOwners is the largest n for which Owners keeps its scratch
// weights on the stack. Larger n (admin listings) allocate one slice.
const maxStackOwners = 16

// Owners appends to dst the user's preference list: the n members with
// the highest weight for user (see Weight), best first, and returns the
// extended slice. n <= 0 or n > Len() means all members. Draining members
// are included in their place; use FirstAlive or filter on State to route.
// With n <= 16 and enough capacity in dst, Owners allocates nothing.
func (s *Snapshot) Owners(user string, n int, dst []Member) []Member {
	if s == nil || len(s.members) == 0 {
		return dst
	}
	if n <= 0 || n > len(s.members) {
		n = len(s.members)
	}
	var wbuf [maxStackOwners]uint64
	ws := wbuf[:0]
	if n > maxStackOwners {
		ws = make([]uint64, 0, n)
	}
	base := len(dst)
	for i := range s.members {
		m := &s.members[i]
		w := sum64Pair(s.keys[i], user)
		k := len(ws)
		if k == n {
			if !before(w, m.Name, ws[k-1], dst[base+k-1].Name) {
				continue
			}
			k-- // the last one falls off
		} else {
			ws = append(ws, 0)
			dst = append(dst, Member{})
		}
		// Shift worse entries down and insert at the right place.
		for k > 0 && before(w, m.Name, ws[k-1], dst[base+k-1].Name) {
			ws[k] = ws[k-1]
			dst[base+k] = dst[base+k-1]
			k--
		}
		ws[k] = w
		dst[base+k] = *m
	}
	return dst
}

// Owner returns the first member of the user's preference list, whatever
// its state. ok is false for an empty snapshot.
func (s *Snapshot) Owner(user string) (m Member, ok bool) {
	return s.first(user, false)
}

// FirstAlive returns the first member in state alive in the user's
// preference list: where the user is served now. ok is false when no
// member is alive (the caller then serves the user itself).
func (s *Snapshot) FirstAlive(user string) (m Member, ok bool) {
	return s.first(user, true)
}

func (s *Snapshot) first(user string, aliveOnly bool) (Member, bool) {
	if s == nil {
		return Member{}, false
	}
	best := -1
	var bw uint64
	for i := range s.members {
		m := &s.members[i]
		if aliveOnly && m.State != StateAlive {
			continue
		}
		w := sum64Pair(s.keys[i], user)
		if best < 0 || before(w, m.Name, bw, s.members[best].Name) {
			best, bw = i, w
		}
	}
	if best < 0 {
		return Member{}, false
	}
	return s.members[best], true
}

// Shares estimates, for each member, the fraction of users it serves now
// (it is their first alive member), by hashing sample synthetic user
// names. Draining members get 0. The values sum to 1 unless no member is
// alive. sample <= 0 means 100,000. It allocates and is meant for admin
// commands, not for routing.
func (s *Snapshot) Shares(sample int) map[string]float64 {
	if sample <= 0 {
		sample = 100_000
	}
	shares := make(map[string]float64, s.Len())
	if s == nil {
		return shares
	}
	counts := make([]int, len(s.members))
	buf := make([]byte, 0, 32)
	for i := range sample {
		buf = strconv.AppendInt(append(buf[:0], "share-sample-"...), int64(i), 10)
		if m, ok := s.FirstAlive(string(buf)); ok {
			j, _ := slices.BinarySearchFunc(s.members, m.Name, func(m Member, n string) int { return strings.Compare(m.Name, n) })
			counts[j]++
		}
	}
	for i, m := range s.members {
		shares[m.Name] = float64(counts[i]) / float64(sample)
	}
	return shares
}

// snapshotJSON is the JSON form of a snapshot (for the admin /ring page).
type snapshotJSON struct {
	Epoch   uint64   `json:"epoch"`
	Members []Member `json:"members"`
}

// MarshalJSON writes {"epoch": N, "members": [...]} with members sorted by
// name.
func (s *Snapshot) MarshalJSON() ([]byte, error) {
	if s == nil {
		return []byte("null"), nil
	}
	ms := s.members
	if ms == nil {
		ms = []Member{}
	}
	return json.Marshal(snapshotJSON{Epoch: s.epoch, Members: ms})
}

// UnmarshalJSON reads what MarshalJSON wrote (for tools and tests).
func (s *Snapshot) UnmarshalJSON(b []byte) error {
	var v snapshotJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("ring: decode snapshot: %w", err)
	}
	ns, err := NewSnapshot(v.Members)
	if err != nil {
		return err
	}
	ns.epoch = v.Epoch
	*s = *ns
	return nil
}
