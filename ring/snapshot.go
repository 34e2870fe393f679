package ring

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
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

// Weight is the rendezvous weight of node for user. With XXH64 the 64-bit
// xxHash with seed 0 over the bytes of a string (xxhash.Sum64String of
// github.com/cespare/xxhash/v2) and mix64 the splitmix64 finalizer
//
//	mix64(x) = x ^= x >> 30; x *= 0xbf58476d1ce4e5b9
//	           x ^= x >> 27; x *= 0x94d049bb133111eb
//	           x ^= x >> 31; return x
//
// (all arithmetic modulo 2^64), the weight is
//
//	key(node)          = mix64(XXH64(node))
//	weight(node, user) = mix64(XXH64(user) ^ key(node))
//
// A lookup hashes the user name once and each member costs one mix64:
// snapshots compute the keys of their members when they are built. The
// outer mix64 makes the weights of one user on different nodes look
// independent: ranked by XXH64(user) ^ key(node) alone, the order depends
// mostly on the top bits of the keys, and the busiest of 50 nodes gets six
// times its share. The inner mix64 keeps the two names apart: without it
// the weight would be symmetric in node and user, and a user named like a
// node would always get weight 0 on that node.
//
// A user's preference list is the members ordered by weight, highest
// first; equal weights are ordered by node name, lower first. mix64 is a
// bijection, so two members weigh the same for a user only if their keys
// are equal, that is, if their names collide in XXH64 (then they tie for
// every user and the lower name always wins the tie). The user name is
// hashed exactly as given: callers pass the canonical login name.
//
// Changing any of this reroutes users between nodes running different
// versions during a rolling upgrade; the golden vectors in the tests pin
// it.
func Weight(node, user string) uint64 {
	return mix64(xxhash.Sum64String(user) ^ nodeKey(node))
}

// nodeKey returns key(node) (see Weight). Snapshots keep one per member.
func nodeKey(node string) uint64 {
	return mix64(xxhash.Sum64String(node))
}

// mix64 is the splitmix64 finalizer (see Weight): a bijection of 64-bit
// values in which every input bit affects every output bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Snapshot is an immutable view of the ring: a set of members with unique
// names. All its methods are safe for concurrent use; lookups take no
// locks and allocate nothing.
type Snapshot struct {
	members []Member    // sorted by name; never modified after construction
	keys    []memberKey // keys[i] is for members[i]
	epoch   uint64
}

// memberKey is what a lookup reads of a member, packed apart from the
// member so that a scan over all members stays in a few cache lines.
type memberKey struct {
	key   uint64 // nodeKey(Name)
	alive bool   // State == StateAlive
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
	keys := make([]memberKey, len(ms))
	for i, m := range ms {
		keys[i] = memberKey{key: nodeKey(m.Name), alive: m.State == StateAlive}
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
// space on the stack. Larger n (admin listings) allocate one slice.
const maxStackOwners = 16

// Owners appends to dst the user's preference list: the n members with
// the highest weight for user (see Weight), best first, and returns the
// extended slice. n <= 0 or n > Len() means all members. Draining members
// are included in their place; use FirstAlive or filter on State to route.
// With n <= 16 and enough capacity in dst, Owners allocates nothing.
//
// Members are kept sorted by name, so every scan below meets them in name
// order: a member that weighs the same as one already chosen comes after
// it, which is the tie-break by name of Weight. Hence the strict
// comparisons.
func (s *Snapshot) Owners(user string, n int, dst []Member) []Member {
	if s == nil || len(s.members) == 0 {
		return dst
	}
	if n <= 0 || n > len(s.members) {
		n = len(s.members)
	}
	uh := xxhash.Sum64String(user)
	switch n {
	case 1:
		return append(dst, s.members[s.best(uh, false)])
	case 2:
		i, j := s.best2(uh)
		return append(dst, s.members[i], s.members[j])
	}
	return s.topN(uh, n, dst)
}

// best returns the index of the member with the highest weight for the
// user hash uh, among the alive members if aliveOnly; -1 if there is none.
func (s *Snapshot) best(uh uint64, aliveOnly bool) int {
	best := -1
	var bw uint64
	for i, k := range s.keys {
		if aliveOnly && !k.alive {
			continue
		}
		if w := mix64(uh ^ k.key); w > bw || best < 0 {
			best, bw = i, w
		}
	}
	return best
}

// best2 returns the indexes of the two members with the highest weights
// for the user hash uh, best first, in one pass. It needs two members.
func (s *Snapshot) best2(uh uint64) (first, second int) {
	keys := s.keys
	w0, w1 := mix64(uh^keys[0].key), mix64(uh^keys[1].key)
	first, second = 0, 1
	if w1 > w0 {
		first, second, w0, w1 = 1, 0, w1, w0
	}
	for i := 2; i < len(keys); i++ {
		w := mix64(uh ^ keys[i].key)
		if w <= w1 {
			continue
		}
		if w > w0 {
			second, w1 = first, w0
			first, w0 = i, w
		} else {
			second, w1 = i, w
		}
	}
	return first, second
}

// topN appends the n members with the highest weights for the user hash
// uh, best first: one pass keeping the best n so far in order.
func (s *Snapshot) topN(uh uint64, n int, dst []Member) []Member {
	type ranked struct {
		w uint64 // weight
		i int    // index in s.members
	}
	var buf [maxStackOwners]ranked
	top := buf[:0]
	if n > maxStackOwners {
		top = make([]ranked, 0, n)
	}
	for i, key := range s.keys {
		w := mix64(uh ^ key.key)
		k := len(top)
		if k == n {
			if w <= top[k-1].w {
				continue
			}
			k-- // the last one falls off
		} else {
			top = append(top, ranked{})
		}
		// Shift lighter entries down and insert at the right place.
		for k > 0 && w > top[k-1].w {
			top[k] = top[k-1]
			k--
		}
		top[k] = ranked{w, i}
	}
	for _, r := range top {
		dst = append(dst, s.members[r.i])
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
	i := s.best(xxhash.Sum64String(user), aliveOnly)
	if i < 0 {
		return Member{}, false
	}
	return s.members[i], true
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
		if j := s.best(xxhash.Sum64(buf), true); j >= 0 {
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
