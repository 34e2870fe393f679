package clustertest

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// netnsPair is two network namespaces made by the test, joined by a veth
// pair: side A holds 198.18.0.1 and .2, side B 198.18.0.3 and .4
// (198.18.0.0/15 is the benchmarking range; nothing outside the two
// namespaces sees it). Cutting the link partitions them.
type netnsPair struct {
	a, b   string // namespace names
	va, vb string // the veth ends
}

// newNetnsPair makes the namespaces, or skips the test with the reason
// they cannot be made. They are deleted in t.Cleanup (registered before
// any process starts, so it runs after the processes are gone).
func newNetnsPair(t *testing.T) *netnsPair {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip(8) to make network namespaces")
	}
	id := strconv.Itoa(os.Getpid())
	n := &netnsPair{a: "nfsimap-ct-" + id + "-a", b: "nfsimap-ct-" + id + "-b", va: "ncta" + id, vb: "nctb" + id}
	ip := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := ip("netns", "add", n.a); err != nil {
		t.Skipf("cannot make a network namespace: %v", err)
	}
	del := func(name string) {
		if err := ip("netns", "del", name); err != nil {
			t.Errorf("removing the namespace: %v", err)
		}
	}
	t.Cleanup(func() { del(n.a) })
	if err := ip("netns", "add", n.b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { del(n.b) })
	// The veth pair is made inside A at once, so it never lives in the
	// machine's own namespace; deleting a namespace deletes it.
	steps := [][]string{
		{"-n", n.a, "link", "add", n.va, "type", "veth", "peer", "name", n.vb, "netns", n.b},
		{"-n", n.a, "link", "set", "lo", "up"},
		{"-n", n.b, "link", "set", "lo", "up"},
		{"-n", n.a, "addr", "add", "198.18.0.1/24", "dev", n.va},
		{"-n", n.a, "addr", "add", "198.18.0.2/24", "dev", n.va},
		{"-n", n.b, "addr", "add", "198.18.0.3/24", "dev", n.vb},
		{"-n", n.b, "addr", "add", "198.18.0.4/24", "dev", n.vb},
		{"-n", n.a, "link", "set", n.va, "up"},
		{"-n", n.b, "link", "set", n.vb, "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// link sets the veth link up or down (down on one end takes the carrier
// of the other).
func (n *netnsPair) link(t *testing.T, up bool) {
	t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	for _, args := range [][]string{{"-n", n.a, "link", "set", n.va, state}, {"-n", n.b, "link", "set", n.vb, state}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
}

var messageID = regexp.MustCompile(`(?i)\* \d+ FETCH \(UID (\d+) BODY\[HEADER\.FIELDS \("?MESSAGE-ID"?\)\] \{(\d+)\}`)

// mailboxView lists INBOX as UID -> Message-ID, through a session served
// from entry.
func mailboxView(netns, entry, user string) (map[uint32]string, error) {
	c, err := dial(netns, entry)
	if err != nil {
		return nil, err
	}
	defer c.close()
	if err := c.login(user); err != nil {
		return nil, err
	}
	if _, err := c.cmd("SELECT INBOX"); err != nil {
		return nil, err
	}
	out, err := c.cmd("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
	if err != nil {
		return nil, err
	}
	view := map[uint32]string{}
	for _, m := range messageID.FindAllStringSubmatchIndex(out, -1) {
		uid, _ := strconv.ParseUint(out[m[2]:m[3]], 10, 32)
		size, _ := strconv.Atoi(out[m[4]:m[5]])
		body := out[m[1]+2 : m[1]+2+size] // after "}\r\n"
		id := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(body), "Message-ID:"))
		if _, dup := view[uint32(uid)]; dup {
			return nil, fmt.Errorf("UID %d listed twice", uid)
		}
		view[uint32(uid)] = id
	}
	return view, c.logout()
}

// TestPartition: four nodes in two network namespaces; the link between
// them is cut. Each side drops the other from its ring and serves every
// user that reaches it, while both sides append to the same users'
// mailboxes on the shared spool. After the link is back, every message
// appended on either side is there exactly once, under a unique UID, and
// both sides list the same UIDs.
func TestPartition(t *testing.T) {
	h := newSpool(t, 4)
	ns := newNetnsPair(t)
	for i, ip := range []string{"198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4"} {
		p := &proc{name: fmt.Sprintf("n%d", i+1), ip: ip, netns: ns.a}
		if i >= 2 {
			p.netns = ns.b
		}
		// Each address is this node's alone inside private namespaces:
		// fixed ports will do.
		p.imap, p.internal, p.gossip, p.httpAdr = ip+":1143", ip+":1144", ip+":7946", ip+":8080"
		p.socket = fmt.Sprintf("%s/%s.sock", h.dir, p.name)
		h.nodes = append(h.nodes, p)
	}
	began := time.Now()
	h.startAll()
	t.Logf("4 nodes up in %v", time.Since(began).Round(time.Millisecond))
	sideA, sideB := h.nodes[:2], h.nodes[2:]

	ns.link(t, false)
	cut := time.Now()
	h.waitMembers(sideA, 2, 10*time.Second)
	h.waitMembers(sideB, 2, 10*time.Second)
	t.Logf("both sides dropped the other %v after the cut", time.Since(cut).Round(time.Millisecond))

	want := map[string][]string{} // user -> Message-IDs appended
	const perSide = 5
	for _, side := range [][]*proc{sideA, sideB} {
		names := []string{side[0].name, side[1].name}
		for _, u := range h.users {
			for k, entry := range side {
				c, err := dial(entry.netns, entry.imap)
				if err != nil {
					t.Fatalf("%s at %s: %v", u, entry.name, err)
				}
				if err := c.login(u); err != nil {
					t.Fatalf("%s at %s during the partition: %v", u, entry.name, err)
				}
				served, err := c.nodeName()
				if err != nil || !slices.Contains(names, served) {
					t.Fatalf("%s at %s during the partition served by %q (%v), want one of %v", u, entry.name, served, err, names)
				}
				for i := range perSide {
					id := fmt.Sprintf("<%s.%s.%d.%d@partition>", u, entry.name, k, i)
					msg := fmt.Sprintf("From: a@example.org\r\nMessage-ID: %s\r\nSubject: during the partition\r\n\r\nbody\r\n", id)
					if _, err := c.cmd(fmt.Sprintf("APPEND INBOX {%d+}\r\n%s", len(msg), msg)); err != nil {
						t.Fatalf("APPEND for %s at %s: %v", u, entry.name, err)
					}
					want[u] = append(want[u], id)
				}
				c.logout()
				c.close()
			}
		}
	}

	t.Logf("appended on both sides in %v", time.Since(cut).Round(time.Millisecond))
	ns.link(t, true)
	healed := time.Now()
	// The halves find each other again only by rejoining the seeds
	// (ring.Config.RejoinInterval, 5 min by default and not settable in
	// the node's configuration): report, do not wait that long.
	merged := true
	deadline := time.Now().Add(8 * time.Second)
	for _, p := range h.nodes {
		for {
			m, err := h.members(p)
			if err == nil && len(m) == 4 {
				break
			}
			if time.Now().After(deadline) {
				merged = false
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if merged {
		t.Logf("the ring merged %v after the link came back", time.Since(healed).Round(time.Millisecond))
		// One ring again: every entry sends a user to the same node.
		for _, u := range h.users {
			ur, err := h.where(h.nodes[0], u)
			if err != nil {
				t.Fatal(err)
			}
			for _, entry := range []*proc{sideA[1], sideB[1]} {
				got, err := servedAt(entry.netns, entry.imap, u)
				if err != nil || got != ur.ServedBy {
					t.Errorf("%s at %s after the merge: served by %q (%v), want %s", u, entry.name, got, err, ur.ServedBy)
				}
			}
		}
	} else {
		t.Logf("the two halves did not merge within 8 s after the link came back (rejoin_interval in the node configuration: %v)", h.rejoin)
	}

	checked := time.Now()
	defer func() { t.Logf("checked the spool in %v", time.Since(checked).Round(time.Millisecond)) }()
	for _, u := range h.users {
		var first map[uint32]string
		for _, entry := range []*proc{sideA[0], sideB[0]} {
			view, err := mailboxView(entry.netns, entry.imap, u)
			if err != nil {
				t.Fatalf("%s at %s after the partition: %v", u, entry.name, err)
			}
			seen := map[string]uint32{}
			for uid, id := range view {
				if old, dup := seen[id]; dup {
					t.Errorf("%s at %s: %s under UIDs %d and %d", u, entry.name, id, old, uid)
				}
				seen[id] = uid
			}
			for _, id := range want[u] {
				if _, ok := seen[id]; !ok {
					t.Errorf("%s at %s: %s appended during the partition is missing", u, entry.name, id)
				}
			}
			if len(view) != len(want[u]) {
				t.Errorf("%s at %s: %d messages, want %d", u, entry.name, len(view), len(want[u]))
			}
			if first == nil {
				first = view
			} else if fmt.Sprint(first) != fmt.Sprint(view) {
				t.Errorf("%s: the two sides list different UIDs:\n%v\n%v", u, first, view)
			}
		}
	}
	if !merged && !t.Failed() {
		t.Error("spool invariants hold, but the ring halves did not merge after the partition healed (cluster.rejoin_interval)")
	}
}
