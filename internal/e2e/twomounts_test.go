package e2e

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/nfsimap/nfsimap/internal/nfstest"
)

// TestTwoNodesTwoMounts is TestTwoNodesOneSpool with each node on its own
// NFS-like mount of one backing directory: each mount has its own kernel
// attribute, entry and directory caches, as two NFS clients of one filer
// do. Clients of both nodes append, store, copy, move and expunge in the
// same mailboxes at once; nothing is lost or duplicated, UIDs are unique,
// flags are the last ones set, and both nodes converge on the expected
// view once the caches have expired.
func TestTwoNodesTwoMounts(t *testing.T) {
	runTwoMounts(t, nfstest.Faults{})
}

// TestTwoNodesTwoMountsCoarseMtime runs the same load on a filer with
// 1-second timestamps: a change one node makes in the same second as the
// other node's listing leaves the directory's mtime as it was, and the
// other node's mount keeps the stale listing until maildir's
// ListingGuard flushes it (about 3 s).
func TestTwoNodesTwoMountsCoarseMtime(t *testing.T) {
	runTwoMounts(t, nfstest.Faults{CoarseMtime: true})
}

// TestTwoNodesTwoMountsEStale runs the same load while 1% of the mounts'
// requests fail with ESTALE, as they do on NFS when another client
// removed or replaced a file.
func TestTwoNodesTwoMountsEStale(t *testing.T) {
	runTwoMounts(t, nfstest.Faults{EStaleRate: 0.01})
}

// runTwoMounts mounts one backing directory twice with 1-second caches,
// switches faults on both mounts and runs the two-node load on them.
func runTwoMounts(t *testing.T, faults nfstest.Faults) {
	backing := t.TempDir()
	const cacheFor = time.Second
	opts := nfstest.Options{AttrTimeout: cacheFor, EntryTimeout: cacheFor, NegativeTimeout: cacheFor, CacheDir: true}
	mntA := nfstest.MountT(t, backing, opts)
	mntB := nfstest.MountT(t, backing, opts)
	mntA.SetFaults(faults)
	mntB.SetFaults(faults)
	// The nodes are stopped (cleanups run last-in first-out) before the
	// mounts they use are unmounted.
	a := Start(t, Options{Spool: mntA.Dir})
	b := Start(t, Options{Spool: mntB.Dir})

	setup := login(t, a.Addr, "user1", nil)
	if err := setup.Create("Shared", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	// Observers stay selected on each mailbox of each node for the whole
	// run and keep asking for news, as an idle mail client does; at the
	// end their views must converge too, not only fresh sessions'.
	type observer struct {
		name    string
		mailbox string
		c       *imapclient.Client
	}
	var observers []observer
	for _, n := range []struct {
		name string
		node *Node
	}{{"A", a}, {"B", b}} {
		for _, mailbox := range []string{"INBOX", "Shared"} {
			c := login(t, n.node.Addr, "user1", nil)
			if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
				t.Fatal(err)
			}
			observers = append(observers, observer{name: n.name, mailbox: mailbox, c: c})
		}
	}
	stop := make(chan struct{})
	var owg sync.WaitGroup
	oerrs := make(chan error, len(observers))
	for _, o := range observers {
		owg.Add(1)
		go func() {
			defer owg.Done()
			tick := time.NewTicker(150 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if _, err := sessionView(o.c); err != nil {
					oerrs <- fmt.Errorf("observer of %s on node %s: %w", o.mailbox, o.name, err)
					return
				}
			}
		}()
	}

	start := time.Now()
	exp := runTwoNodeWorkers(t, a, b)
	close(stop)
	owg.Wait()
	close(oerrs)
	for err := range oerrs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	t.Logf("workers done in %v", time.Since(start).Round(time.Millisecond))

	// Both nodes must converge on the expected content once the mounts'
	// caches have expired; allow many cache lifetimes.
	for _, mailbox := range []string{"INBOX", "Shared"} {
		want := exp.boxes[mailbox]
		wantView := expectedView(want)
		var viewA, viewB string
		converging := time.Now()
		deadline := converging.Add(20 * time.Second)
		for {
			viewA = mailboxView(t, a.Addr, mailbox)
			viewB = mailboxView(t, b.Addr, mailbox)
			if (viewA == wantView && viewB == wantView) || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond) // polling for convergence, bounded by the deadline
		}
		t.Logf("%s: %d messages; converged after %v", mailbox, strings.Count(wantView, "\n")+btoi(wantView != ""), time.Since(converging).Round(time.Millisecond))
		if viewA != viewB {
			t.Errorf("%s: the nodes disagree after 20s:\nA:\n%s\nB:\n%s", mailbox, viewA, viewB)
		}
		checkView(t, mailbox+" on node A", viewA, want)
		checkView(t, mailbox+" on node B", viewB, want)
	}
	if t.Failed() {
		return
	}

	// The sessions selected all along must reach the same views.
	for _, o := range observers {
		wantView := expectedView(exp.boxes[o.mailbox])
		var view string
		var err error
		converging := time.Now()
		deadline := converging.Add(20 * time.Second)
		for {
			view, err = sessionView(o.c)
			if err != nil || view == wantView || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond) // polling for convergence, bounded by the deadline
		}
		if err != nil {
			t.Errorf("observer of %s on node %s: %v", o.mailbox, o.name, err)
			continue
		}
		t.Logf("observer of %s on node %s converged after %v", o.mailbox, o.name, time.Since(converging).Round(time.Millisecond))
		checkView(t, "selected "+o.mailbox+" on node "+o.name, view, exp.boxes[o.mailbox])
	}
}

// sessionView asks a selected session for news (NOOP) and returns its
// mailbox as mailboxView does. Within one session UIDs must be unique and
// ascend with the sequence numbers.
func sessionView(c *imapclient.Client) (string, error) {
	if err := c.Noop().Wait(); err != nil {
		return "", fmt.Errorf("NOOP: %w", err)
	}
	mbox := c.Mailbox()
	if mbox == nil {
		return "", fmt.Errorf("no mailbox selected")
	}
	if mbox.NumMessages == 0 {
		return "", nil
	}
	var all imap.SeqSet
	all.AddRange(1, 0)
	msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, Envelope: true}).Collect()
	if err != nil {
		return "", fmt.Errorf("FETCH: %w", err)
	}
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].SeqNum < msgs[j].SeqNum })
	var lines []string
	var last imap.UID
	for _, m := range msgs {
		if m.UID <= last {
			return "", fmt.Errorf("message %d has UID %d after UID %d", m.SeqNum, m.UID, last)
		}
		last = m.UID
		if m.Envelope == nil {
			return "", fmt.Errorf("message %d (UID %d) came without an envelope", m.SeqNum, m.UID)
		}
		lines = append(lines, m.Envelope.Subject+" | "+flagString(m.Flags))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n"), nil
}

// expectedView renders the expectation of one mailbox the way mailboxView
// shows a mailbox: "id | flags" lines, one per copy, sorted.
func expectedView(want map[string]*expected) string {
	var lines []string
	for id, x := range want {
		for _, f := range x.flags {
			lines = append(lines, id+" | "+f)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
