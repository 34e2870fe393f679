package clustertest

import (
	"slices"
	"testing"
	"time"
)

// TestServedOnPreferredNode: whichever node a client logs in at, the
// session is served by the node the ring prefers for the user (/ring's
// served_by, identical on every node), as ID's "node=" says.
func TestServedOnPreferredNode(t *testing.T) {
	h := newHarness(t, []string{"127.0.0.21", "127.0.0.22", "127.0.0.23"}, 6)
	h.startAll()
	owners := map[string]int{}
	for _, u := range h.users {
		var want string
		for _, p := range h.nodes {
			ur, err := h.where(p, u)
			if err != nil {
				t.Fatal(err)
			}
			if want == "" {
				want = ur.ServedBy
			} else if ur.ServedBy != want {
				t.Fatalf("%s: %s says %s serves it, %s said %s", u, p.name, ur.ServedBy, h.nodes[0].name, want)
			}
		}
		owners[want]++
		for _, entry := range h.nodes {
			got, err := servedAt("", entry.imap, u)
			if err != nil {
				t.Fatalf("%s at %s: %v", u, entry.name, err)
			}
			if got != want {
				t.Errorf("%s logging in at %s was served by %s, the ring prefers %s", u, entry.name, got, want)
			}
		}
	}
	t.Logf("owners of %d users: %v", len(h.users), owners)
	if len(owners) < 2 {
		t.Errorf("all users hash to one node: %v", owners)
	}
}

// TestKillPreferredNode: SIGKILL the node that serves a user. New logins
// are served at once by the next node of the preference list (the dead
// peer's connect fails, the next is tried); every node drops the dead one
// within the gossip detection time; once it is back, it serves the user
// again.
func TestKillPreferredNode(t *testing.T) {
	h := newHarness(t, []string{"127.0.0.31", "127.0.0.32", "127.0.0.33"}, 6)
	h.startAll()
	// A user whose owner is not n1, so logins can enter at n1 and at the
	// third node while the owner is dead.
	var (
		user   string
		ur     userRing
		victim *proc
	)
	for _, u := range h.users {
		r, err := h.where(h.nodes[0], u)
		if err != nil {
			t.Fatal(err)
		}
		if r.ServedBy != h.nodes[0].name {
			user, ur, victim = u, r, byName(h.nodes, r.ServedBy)
			break
		}
	}
	if victim == nil {
		t.Fatal("n1 owns every user")
	}
	if len(ur.Preference) < 2 {
		t.Fatalf("preference list of %s: %+v", user, ur.Preference)
	}
	next := ur.Preference[1].Name
	var survivors []*proc
	for _, p := range h.nodes {
		if p != victim {
			survivors = append(survivors, p)
		}
	}
	t.Logf("%s: preference %v; killing %s", user, ur.Preference, victim.name)

	h.kill(victim)
	killed := time.Now()
	for _, entry := range survivors {
		start := time.Now()
		got, err := servedAt("", entry.imap, user)
		if err != nil {
			t.Fatalf("login of %s at %s just after the kill: %v", user, entry.name, err)
		}
		t.Logf("login at %s %v after the kill took %v, served by %s", entry.name, start.Sub(killed).Round(time.Millisecond), time.Since(start).Round(time.Millisecond), got)
		if got != next {
			t.Errorf("login at %s after the kill served by %s, want the next node %s", entry.name, got, next)
		}
	}

	// Every survivor's ring drops the dead node within the detection
	// time.
	const detection = 10 * time.Second
	for _, p := range survivors {
		waitFor(t, p.name+" to drop "+victim.name, detection-time.Since(killed), func() bool {
			m, err := h.members(p)
			return err == nil && !slices.Contains(m, victim.name)
		})
	}
	t.Logf("all survivors dropped %s %v after the kill", victim.name, time.Since(killed).Round(time.Millisecond))
	for _, entry := range survivors {
		got, err := servedAt("", entry.imap, user)
		if err != nil || got != next {
			t.Errorf("login at %s with %s gone: served by %q (%v), want %s", entry.name, victim.name, got, err, next)
		}
	}

	// Back: the user's new logins go to it again, from every entry.
	h.start(victim, []string{survivors[0].gossip})
	back := time.Now()
	h.waitMembers(h.nodes, len(h.nodes), 20*time.Second)
	t.Logf("%s back in every ring %v after its start", victim.name, time.Since(back).Round(time.Millisecond))
	for _, entry := range h.nodes {
		got, err := servedAt("", entry.imap, user)
		if err != nil {
			t.Fatalf("login at %s after the restart: %v", entry.name, err)
		}
		if got != victim.name {
			t.Errorf("login of %s at %s after the restart served by %s, want %s", user, entry.name, got, victim.name)
		}
	}
}
