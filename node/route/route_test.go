package route

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/nfsimap/nfsimap/ring"
)

func snapshot(t *testing.T, states map[string]ring.State) *ring.Snapshot {
	t.Helper()
	var ms []ring.Member
	for n, st := range states {
		ms = append(ms, ring.Member{Name: n, Addr: n + ":1143", State: st})
	}
	s, err := ring.NewSnapshot(ms)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func peerNames(d Decision) []string {
	var ns []string
	for _, m := range d.Peers {
		ns = append(ns, m.Name)
	}
	return ns
}

// userWithOrder finds a user whose full preference list is want.
func userWithOrder(t *testing.T, s *ring.Snapshot, want ...string) string {
	t.Helper()
	for i := range 100_000 {
		u := fmt.Sprintf("user%d", i)
		var got []string
		for _, m := range s.Owners(u, 0, nil) {
			got = append(got, m.Name)
		}
		if slices.Equal(got, want) {
			return u
		}
	}
	t.Fatalf("no user with order %v", want)
	return ""
}

func TestDecide(t *testing.T) {
	alive, draining := ring.StateAlive, ring.StateDraining
	all := map[string]ring.State{"a": alive, "b": alive, "c": alive, "d": alive}
	s := snapshot(t, all)
	u := userWithOrder(t, s, "a", "b", "c", "d")

	for _, tc := range []struct {
		name    string
		states  map[string]ring.State
		self    string
		proxied bool
		want    []string // nil: local
	}{
		{"first choice is me", all, "a", false, nil},
		{"second choice", all, "b", false, []string{"a"}},
		{"far down: two peers then me", all, "d", false, []string{"a", "b"}},
		{"proxied is always local", all, "d", true, nil},
		{"draining first choice skipped", map[string]ring.State{"a": draining, "b": alive, "c": alive, "d": alive}, "b", false, nil},
		{"draining peer skipped", map[string]ring.State{"a": draining, "b": alive, "c": alive, "d": alive}, "d", false, []string{"b", "c"}},
		{"I am draining", map[string]ring.State{"a": draining, "b": alive, "c": alive, "d": alive}, "a", false, []string{"b", "c"}},
		{"only draining peers", map[string]ring.State{"a": draining, "b": draining, "c": draining, "d": draining}, "d", false, nil},
		{"many draining ahead", map[string]ring.State{"a": draining, "b": draining, "c": draining, "d": alive}, "b", false, []string{"d"}},
		{"not in the ring yet", map[string]ring.State{"a": alive, "b": alive, "c": alive, "d": alive}, "new", false, []string{"a", "b"}},
	} {
		d := Decide(snapshot(t, tc.states), tc.self, u, tc.proxied)
		if got := peerNames(d); !slices.Equal(got, tc.want) || d.Local() != (tc.want == nil) {
			t.Errorf("%s: peers %v (local %v), want %v", tc.name, got, d.Local(), tc.want)
		}
	}
	if d := Decide(nil, "a", u, false); !d.Local() {
		t.Error("no ring: not local")
	}
}

// A long preference list where the decision is past the first entries
// Decide looks at.
func TestDecideDeepList(t *testing.T) {
	states := map[string]ring.State{}
	for i := range 12 {
		states[fmt.Sprintf("n%02d", i)] = ring.StateDraining
	}
	s := snapshot(t, states)
	order := s.Owners("someone", 0, nil)
	// Make only the last two alive, in a fresh snapshot.
	states[order[10].Name] = ring.StateAlive
	states[order[11].Name] = ring.StateAlive
	s = snapshot(t, states)
	d := Decide(s, order[0].Name, "someone", false)
	if got := peerNames(d); !slices.Equal(got, []string{order[10].Name, order[11].Name}) {
		t.Fatalf("peers %v", got)
	}
}

// Two nodes with deliberately different views never loop: each would
// send the user to the other, but a proxied connection stays where it
// lands.
func TestDifferentViewsNeverLoop(t *testing.T) {
	alive, draining := ring.StateAlive, ring.StateDraining
	full := snapshot(t, map[string]ring.State{"a": alive, "b": alive})
	u := userWithOrder(t, full, "b", "a")
	// a's view: b is first and alive. b's view: b is draining (a has not
	// heard yet), so b thinks a should serve.
	viewA := full
	viewB := snapshot(t, map[string]ring.State{"a": alive, "b": draining})
	if d := Decide(viewA, "a", u, false); !slices.Equal(peerNames(d), []string{"b"}) {
		t.Fatalf("a would send to %v", peerNames(d))
	}
	if d := Decide(viewB, "b", u, false); !slices.Equal(peerNames(d), []string{"a"}) {
		t.Fatalf("b would send to %v", peerNames(d))
	}
	// A connection that arrived at a, proxied to b, is served at b.
	if d := Decide(viewB, "b", u, true); !d.Local() {
		t.Fatalf("b proxied again to %v", peerNames(d))
	}

	// The same over random disagreeing views: a connection is proxied at
	// most once.
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	nodes := []string{"a", "b", "c", "d", "e"}
	randomView := func() *ring.Snapshot {
		st := map[string]ring.State{}
		for _, n := range nodes {
			switch r.IntN(3) {
			case 0:
				st[n] = alive
			case 1:
				st[n] = draining
			} // else: not in this view
		}
		return snapshot(t, st)
	}
	for i := range 2000 {
		views := map[string]*ring.Snapshot{}
		for _, n := range nodes {
			views[n] = randomView()
		}
		user := fmt.Sprintf("user%d", i)
		at, proxied, hops := nodes[r.IntN(len(nodes))], false, 0
		for {
			d := Decide(views[at], at, user, proxied)
			if d.Local() {
				break
			}
			if len(d.Peers) > MaxPeers || slices.ContainsFunc(d.Peers, func(m ring.Member) bool { return m.Name == at }) {
				t.Fatalf("bad peers %v at %s", peerNames(d), at)
			}
			at, proxied = d.Peers[0].Name, true
			if hops++; hops > 1 {
				t.Fatalf("user %s proxied %d times", user, hops)
			}
		}
	}
}
