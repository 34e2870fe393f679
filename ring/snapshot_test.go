package ring

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The expected values below were computed outside Go, with the system's
// C xxHash library (libxxhash 0.8.1, XXH64 seed 0) over node + "\x00" +
// user. They must never change: a different value means users move
// between nodes running old and new versions during a rolling upgrade.

func TestWeightGolden(t *testing.T) {
	long := strings.Repeat("x", 150)
	r := strings.Repeat
	for _, tc := range []struct {
		node, user string
		want       uint64
	}{
		{"node-a", "alice", 0x3d922ce71c38e416},
		{"a", "bc", 0x3293bdc2cfb086a7},
		{"ab", "c", 0x94cb73913641550d},
		{"imap01", long, 0xa61be5a2696a4783},
		// Past the 256-byte buffer (streaming digest), and just fitting.
		{"imap01", r("y", 300), 0x73e913bc238ef61c},
		{r("n", 200), r("u", 100), 0xc2b75e8416461bac},
		{r("n", 200), r("u", 55), 0xc6aa56f34e62a337},
		{r("n", 200), r("u", 54), 0xcbb6de4949268c9b},
		{"", "", 0xe934a84adb052768},
	} {
		if got := Weight(tc.node, tc.user); got != tc.want {
			t.Errorf("Weight(%q, %q) = %#016x, want %#016x", tc.node, tc.user, got, tc.want)
		}
	}
}

func TestOwnersGolden(t *testing.T) {
	s := mustSnapshot(t, members("imap01", "imap02", "imap03", "imap04", "imap05"))
	for _, tc := range []struct {
		user string
		want []string
	}{
		{"alice", []string{"imap03", "imap05", "imap01", "imap02", "imap04"}},
		{"bob", []string{"imap02", "imap05", "imap03", "imap01", "imap04"}},
		{"carol@example.com", []string{"imap05", "imap01", "imap02", "imap04", "imap03"}},
		{"", []string{"imap04", "imap02", "imap03", "imap01", "imap05"}},
		{"Ünïcødé", []string{"imap04", "imap02", "imap01", "imap05", "imap03"}},
		{"dave", []string{"imap05", "imap02", "imap03", "imap04", "imap01"}},
		{"erin@isp.example", []string{"imap05", "imap02", "imap04", "imap03", "imap01"}},
		{"frank", []string{"imap01", "imap02", "imap04", "imap03", "imap05"}},
		{strings.Repeat("x", 150), []string{"imap04", "imap02", "imap05", "imap01", "imap03"}},
		{"a\x00b", []string{"imap02", "imap01", "imap05", "imap04", "imap03"}},
		{strings.Repeat("y", 300), []string{"imap03", "imap02", "imap05", "imap01", "imap04"}},
	} {
		if got := names(s.Owners(tc.user, 0, nil)); !slices.Equal(got, tc.want) {
			t.Errorf("Owners(%q) = %v, want %v", tc.user, got, tc.want)
		}
		for n := 1; n <= 6; n++ {
			got := names(s.Owners(tc.user, n, nil))
			if want := tc.want[:min(n, len(tc.want))]; !slices.Equal(got, want) {
				t.Errorf("Owners(%q, %d) = %v, want %v", tc.user, n, got, want)
			}
		}
		if m, ok := s.Owner(tc.user); !ok || m.Name != tc.want[0] {
			t.Errorf("Owner(%q) = %v, %v; want %s", tc.user, m.Name, ok, tc.want[0])
		}
	}
}

func TestTieBreakByName(t *testing.T) {
	// Equal weights cannot be produced on purpose with a real hash; check
	// the ordering rule itself.
	if !before(5, "a", 5, "b") || before(5, "b", 5, "a") {
		t.Error("equal weights must order by name, lower first")
	}
	if !before(6, "z", 5, "a") {
		t.Error("higher weight must come first")
	}
}

func TestNewSnapshotErrors(t *testing.T) {
	if _, err := NewSnapshot(members("a", "b", "a")); !errors.Is(err, ErrDuplicateMember) {
		t.Errorf("duplicate: err = %v", err)
	}
	if _, err := NewSnapshot([]Member{{Name: "", State: StateAlive}}); !errors.Is(err, ErrInvalidMember) {
		t.Errorf("empty name: err = %v", err)
	}
	if _, err := NewSnapshot([]Member{{Name: "a"}}); !errors.Is(err, ErrInvalidMember) {
		t.Errorf("no state: err = %v", err)
	}
	var nilSnap *Snapshot
	if nilSnap.Len() != 0 || len(nilSnap.Owners("u", 2, nil)) != 0 {
		t.Error("nil snapshot is not empty")
	}
	if _, ok := nilSnap.FirstAlive("u"); ok {
		t.Error("nil snapshot has an alive member")
	}
	empty := mustSnapshot(t, nil)
	if _, ok := empty.Owner("u"); ok {
		t.Error("empty snapshot has an owner")
	}
}

func TestOwnersAllocatesNothing(t *testing.T) {
	s := mustSnapshot(t, members(nodeNames(50)...))
	dst := make([]Member, 0, 16)
	long := strings.Repeat("y", 300)
	for _, n := range []int{1, 2, 3, 16} {
		allocs := testing.AllocsPerRun(200, func() {
			dst = s.Owners("someone@example.com", n, dst[:0])
			dst = s.Owners(long, n, dst[:0])
		})
		if allocs != 0 {
			t.Errorf("Owners(n=%d) allocates %.1f times per run", n, allocs)
		}
	}
	allocs := testing.AllocsPerRun(200, func() {
		_, _ = s.FirstAlive("someone@example.com")
		_, _ = s.Owner(long)
		_ = Weight("imap01", "someone")
	})
	if allocs != 0 {
		t.Errorf("FirstAlive/Owner/Weight allocate %.1f times per run", allocs)
	}
}

// seededRand returns a generator and logs its seed so a failure can be
// replayed.
func seededRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// randomMembers returns n members with distinct random names, some draining.
func randomMembers(r *rand.Rand, n int) []Member {
	seen := map[string]bool{}
	ms := make([]Member, 0, n)
	for len(ms) < n {
		name := fmt.Sprintf("node-%x", r.Uint32())
		if seen[name] {
			continue
		}
		seen[name] = true
		st := StateAlive
		if r.IntN(4) == 0 {
			st = StateDraining
		}
		ms = append(ms, Member{Name: name, Addr: name + ":1143", State: st})
	}
	return ms
}

func randomUsers(r *rand.Rand, n int) []string {
	us := make([]string, n)
	for i := range us {
		us[i] = fmt.Sprintf("user%d-%x@example.org", i, r.Uint64())
	}
	return us
}

func TestPropertyMemberOrderDoesNotMatter(t *testing.T) {
	r := seededRand(t)
	for range 20 {
		ms := randomMembers(r, 1+r.IntN(40))
		a := mustSnapshot(t, ms)
		shuffled := slices.Clone(ms)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		b := mustSnapshot(t, shuffled)
		for _, u := range randomUsers(r, 200) {
			if x, y := names(a.Owners(u, 0, nil)), names(b.Owners(u, 0, nil)); !slices.Equal(x, y) {
				t.Fatalf("user %q: order depends on member order: %v vs %v", u, x, y)
			}
		}
	}
}

func TestPropertyChangeMovesOnlyChangedNodesUsers(t *testing.T) {
	r := seededRand(t)
	for range 20 {
		ms := randomMembers(r, 2+r.IntN(40))
		before := mustSnapshot(t, ms)
		gone := r.IntN(len(ms))
		after := mustSnapshot(t, slices.Delete(slices.Clone(ms), gone, gone+1))
		goneName := ms[gone].Name
		for _, u := range randomUsers(r, 300) {
			full := names(before.Owners(u, 0, nil))
			left := names(after.Owners(u, 0, nil))
			// Leave: the list is the old one without the departed node, so
			// only its users change first choice, and they go to their
			// previous second choice.
			want := slices.DeleteFunc(slices.Clone(full), func(n string) bool { return n == goneName })
			if !slices.Equal(left, want) {
				t.Fatalf("user %q: after %s left: %v, want %v", u, goneName, left, want)
			}
			// Join (the same change seen backwards): a user moves only if
			// the new node becomes its first choice.
			if full[0] != left[0] && full[0] != goneName {
				t.Fatalf("user %q moved from %s to %s when %s joined", u, left[0], full[0], goneName)
			}
		}
	}
}

func TestPropertyFirstAliveIsFirstLiveEntry(t *testing.T) {
	r := seededRand(t)
	for range 20 {
		ms := randomMembers(r, 1+r.IntN(30))
		all := mustSnapshot(t, ms)
		live := mustSnapshot(t, slices.DeleteFunc(slices.Clone(ms), func(m Member) bool { return m.State != StateAlive }))
		for _, u := range randomUsers(r, 200) {
			var want Member
			found := false
			for _, m := range all.Owners(u, 0, nil) {
				if m.State == StateAlive {
					want, found = m, true
					break
				}
			}
			got, ok := all.FirstAlive(u)
			if ok != found || got != want {
				t.Fatalf("user %q: FirstAlive = %v %v, first live entry = %v %v", u, got, ok, want, found)
			}
			// Routing over a snapshot of the live members only agrees.
			lo, lok := live.Owner(u)
			if lok != found || lo != want {
				t.Fatalf("user %q: owner among live members = %v %v, want %v %v", u, lo, lok, want, found)
			}
			// Owners(n) is a prefix of the full list.
			n := 1 + r.IntN(all.Len())
			if x, y := names(all.Owners(u, n, nil)), names(all.Owners(u, 0, nil))[:n]; !slices.Equal(x, y) {
				t.Fatalf("user %q: Owners(%d) = %v, not a prefix %v", u, n, x, y)
			}
		}
	}
}

func TestOwnersAppends(t *testing.T) {
	s := mustSnapshot(t, members("a", "b", "c"))
	dst := []Member{{Name: "keep"}}
	got := s.Owners("u", 2, dst)
	if len(got) != 3 || got[0].Name != "keep" {
		t.Fatalf("Owners did not append: %v", names(got))
	}
	if x, y := names(got[1:]), names(s.Owners("u", 2, nil)); !slices.Equal(x, y) {
		t.Fatalf("appended %v, want %v", x, y)
	}
	// n over the 16-entry stack buffer still sorts right.
	big := mustSnapshot(t, members(nodeNames(40)...))
	all := big.Owners("someone", 0, nil)
	for i := 1; i < len(all); i++ {
		if !before(Weight(all[i-1].Name, "someone"), all[i-1].Name, Weight(all[i].Name, "someone"), all[i].Name) {
			t.Fatalf("full list not sorted at %d", i)
		}
	}
}

func TestLoadBalance50Nodes(t *testing.T) {
	// With 100,000 users a node's count varies by about 2.2% (Poisson),
	// so the busiest of 50 is about 5% over the mean whatever the hash:
	// 1,000,000 users are needed to measure the hash rather than the
	// sample (expected about 1.016, as in NOTES.md). Under the race
	// detector (too slow for that) 100,000 users and the sampling bound.
	const nodes = 50
	users, limit := 1_000_000, 1.03
	if raceEnabled || testing.Short() {
		users, limit = 100_000, 1.10
	}
	s := mustSnapshot(t, members(nodeNames(nodes)...))
	count := map[string]int{}
	for i := range users {
		m, _ := s.Owner("user" + strconv.Itoa(i) + "@example.com")
		count[m.Name]++
	}
	maxLoad := 0
	for _, c := range count {
		maxLoad = max(maxLoad, c)
	}
	ratio := float64(maxLoad) / (float64(users) / float64(nodes))
	t.Logf("%d nodes, %d users: max/mean load %.3f", nodes, users, ratio)
	if len(count) != nodes || ratio >= limit {
		t.Errorf("max/mean load %.3f over %d nodes, want < %.2f over %d", ratio, len(count), limit, nodes)
	}
}

func TestShares(t *testing.T) {
	ms := members("a", "b", "c", "d")
	ms[3].State = StateDraining
	s := mustSnapshot(t, ms)
	sh := s.Shares(30_000)
	sum := 0.0
	for _, v := range sh {
		sum += v
	}
	if len(sh) != 4 || sh["d"] != 0 || sum < 0.999 || sum > 1.001 {
		t.Fatalf("shares %v (sum %f)", sh, sum)
	}
	for _, n := range []string{"a", "b", "c"} {
		if sh[n] < 0.30 || sh[n] > 0.37 {
			t.Errorf("share of %s = %.3f, want about 1/3", n, sh[n])
		}
	}
}

func TestSnapshotJSON(t *testing.T) {
	ms := members("b", "a")
	ms[0].State = StateDraining
	ms[0].Version = "1.2.3"
	s := mustSnapshot(t, ms)
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"epoch":0,"members":[{"name":"a","addr":"a:1143","state":"alive"},{"name":"b","addr":"b:1143","state":"draining","version":"1.2.3"}]}`
	if string(b) != want {
		t.Fatalf("JSON\n got %s\nwant %s", b, want)
	}
	var back Snapshot
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Members(), s.Members()) {
		t.Fatalf("round trip: %v vs %v", back.Members(), s.Members())
	}
	if err := json.Unmarshal([]byte(`{"members":[{"name":"a","state":"gone"}]}`), &back); err == nil {
		t.Fatal("unknown state accepted")
	}
	if m, ok := back.Member("b"); !ok || m.Version != "1.2.3" {
		t.Fatalf("Member(b) = %v %v", m, ok)
	}
}

func BenchmarkOwners(b *testing.B) {
	for _, nodes := range []int{10, 50, 200} {
		s, err := NewSnapshot(members(nodeNames(nodes)...))
		if err != nil {
			b.Fatal(err)
		}
		users := make([]string, 1024)
		for i := range users {
			users[i] = "user" + strconv.Itoa(i) + "@example.com"
		}
		for _, n := range []int{1, 2} {
			b.Run(fmt.Sprintf("nodes=%d/top=%d", nodes, n), func(b *testing.B) {
				dst := make([]Member, 0, n)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					dst = s.Owners(users[i&1023], n, dst[:0])
					i++
				}
			})
		}
		b.Run(fmt.Sprintf("nodes=%d/firstalive", nodes), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_, _ = s.FirstAlive(users[i&1023])
				i++
			}
		})
	}
}

func mustSnapshot(t testing.TB, ms []Member) *Snapshot {
	t.Helper()
	s, err := NewSnapshot(ms)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func members(names ...string) []Member {
	ms := make([]Member, len(names))
	for i, n := range names {
		ms[i] = Member{Name: n, Addr: n + ":1143", State: StateAlive}
	}
	return ms
}

func nodeNames(n int) []string {
	ns := make([]string, n)
	for i := range ns {
		ns[i] = fmt.Sprintf("imap%03d.example.net", i+1)
	}
	return ns
}

func names(ms []Member) []string {
	ns := make([]string, len(ms))
	for i, m := range ms {
		ns[i] = m.Name
	}
	return ns
}
