package e2e

import (
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// expectation is what must be in a mailbox at the end: per message id, the
// flags of each copy.
type expectation struct {
	mu    sync.Mutex
	boxes map[string]map[string]*expected // mailbox -> id -> expected
}

type expected struct {
	flags []string // one entry per copy, as flagString gives them
}

// set says the mailbox holds the message once, with flags, or (gone)
// not at all.
func (e *expectation) set(mailbox, id string, gone bool, flags string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.boxes[mailbox] == nil {
		e.boxes[mailbox] = map[string]*expected{}
	}
	if gone {
		delete(e.boxes[mailbox], id)
		return
	}
	e.boxes[mailbox][id] = &expected{flags: []string{flags}}
}

// add says the mailbox holds one more copy of the message, with flags.
func (e *expectation) add(mailbox, id, flags string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.boxes[mailbox] == nil {
		e.boxes[mailbox] = map[string]*expected{}
	}
	x := e.boxes[mailbox][id]
	if x == nil {
		x = &expected{}
		e.boxes[mailbox][id] = x
	}
	x.flags = append(x.flags, flags)
}

func (e *expectation) get(mailbox, id string) *expected {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x := e.boxes[mailbox][id]; x != nil {
		return &expected{flags: append([]string(nil), x.flags...)}
	}
	return nil
}

var twoNodeFlags = []imap.Flag{imap.FlagSeen, imap.FlagFlagged, imap.FlagAnswered, "$Work"}

func flagString(flags []imap.Flag) string {
	var s []string
	for _, f := range flags {
		if strings.EqualFold(string(f), `\Recent`) {
			continue
		}
		s = append(s, strings.ToLower(string(f)))
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

// TestTwoNodesOneSpool: clients of two node processes on one spool append,
// store, copy, move and expunge in the same mailboxes at once. Nothing is
// lost or duplicated, UIDs are unique, flags are the last ones set, and
// both nodes converge on the same view.
func TestTwoNodesOneSpool(t *testing.T) {
	spool := t.TempDir()
	a := Start(t, Options{Spool: spool})
	b := Start(t, Options{Spool: spool})
	setup := login(t, a.Addr, "user1", nil)
	if err := setup.Create("Shared", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	exp := runTwoNodeWorkers(t, a, b)
	if t.Failed() {
		return
	}

	// Both nodes must converge on the expected content.
	for _, mailbox := range []string{"INBOX", "Shared"} {
		want := exp.boxes[mailbox]
		var viewA, viewB string
		deadline := time.Now().Add(15 * time.Second)
		for {
			viewA = mailboxView(t, a.Addr, mailbox)
			viewB = mailboxView(t, b.Addr, mailbox)
			if viewA == viewB || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond) // polling for convergence, bounded by the deadline
		}
		if viewA != viewB {
			t.Fatalf("%s: the nodes disagree:\nA:\n%s\nB:\n%s", mailbox, viewA, viewB)
		}
		checkView(t, mailbox, viewA, want)
	}
}

func twoNodeWorker(c *imapclient.Client, w int, rng *rand.Rand, ops int, exp *expectation) error {
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		return err
	}
	var mine []string // live ids of this worker in INBOX
	find := func(id string) (imap.UID, error) {
		data, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "X-Test-ID", Value: id}}}, nil).Wait()
		if err != nil {
			return 0, err
		}
		uids := data.AllUIDs()
		if len(uids) != 1 {
			var seen []string
			var all imap.SeqSet
			all.AddRange(1, 0)
			if msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, Envelope: true}).Collect(); err == nil {
				for _, m := range msgs {
					seen = append(seen, fmt.Sprintf("%d:%s", m.UID, m.Envelope.Subject))
				}
			}
			return 0, fmt.Errorf("id %s found %d times in INBOX (%v); the session sees %v", id, len(uids), uids, seen)
		}
		return uids[0], nil
	}
	pick := func() (int, string) {
		i := rng.Intn(len(mine))
		return i, mine[i]
	}
	for i := 0; i < ops; i++ {
		id := fmt.Sprintf("w%d-%dz", w, i)
		var flags []imap.Flag
		for _, f := range twoNodeFlags {
			if rng.Intn(3) == 0 {
				flags = append(flags, f)
			}
		}
		body := fmt.Sprintf("From: w%d@test\r\nSubject: %s\r\nX-Test-ID: %s\r\n\r\nbody\r\n", w, id, id)
		cmd := c.Append("INBOX", int64(len(body)), &imap.AppendOptions{Flags: flags})
		_, werr := cmd.Write([]byte(body))
		if err := cmd.Close(); err != nil || werr != nil {
			return fmt.Errorf("APPEND %s: %v %v", id, werr, err)
		}
		if _, err := cmd.Wait(); err != nil {
			return fmt.Errorf("APPEND %s: %w", id, err)
		}
		exp.set("INBOX", id, false, flagString(flags))
		mine = append(mine, id)

		switch {
		case i%3 == 1 && len(mine) > 0:
			_, id := pick()
			uid, err := find(id)
			if err != nil {
				return err
			}
			f := twoNodeFlags[rng.Intn(len(twoNodeFlags))]
			op := imap.StoreFlagsAdd
			if rng.Intn(2) == 0 {
				op = imap.StoreFlagsDel
			}
			msgs, err := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: op, Flags: []imap.Flag{f}}, nil).Collect()
			if err != nil {
				return fmt.Errorf("STORE %s: %w", id, err)
			}
			for _, m := range msgs {
				if m.UID == uid {
					exp.set("INBOX", id, false, flagString(m.Flags))
				}
			}
		case i%5 == 2 && len(mine) > 0:
			k, id := pick()
			uid, err := find(id)
			if err != nil {
				return err
			}
			if _, err := c.Move(imap.UIDSetNum(uid), "Shared").Wait(); err != nil {
				return fmt.Errorf("MOVE %s: %w", id, err)
			}
			e := exp.get("INBOX", id)
			exp.set("INBOX", id, true, "")
			exp.add("Shared", id, e.flags[0])
			mine = append(mine[:k], mine[k+1:]...)
		case i%7 == 3 && len(mine) > 0:
			_, id := pick()
			uid, err := find(id)
			if err != nil {
				return err
			}
			if _, err := c.Copy(imap.UIDSetNum(uid), "Shared").Wait(); err != nil {
				return fmt.Errorf("COPY %s: %w", id, err)
			}
			exp.add("Shared", id, exp.get("INBOX", id).flags[0])
		case i%4 == 0 && len(mine) > 0:
			k, id := pick()
			uid, err := find(id)
			if err != nil {
				return err
			}
			if err := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
				return fmt.Errorf("STORE \\Deleted %s: %w", id, err)
			}
			if _, err := c.UIDExpunge(imap.UIDSetNum(uid)).Collect(); err != nil {
				return fmt.Errorf("UID EXPUNGE %s: %w", id, err)
			}
			exp.set("INBOX", id, true, "")
			mine = append(mine[:k], mine[k+1:]...)
		}
	}
	return c.Logout().Wait()
}

// mailboxView lists "id flags" lines of a mailbox, sorted, and checks the
// UIDs are unique.
func mailboxView(t *testing.T, addr, mailbox string) string {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("user1", "password").Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages == 0 {
		return ""
	}
	var all imap.SeqSet
	all.AddRange(1, 0)
	msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, Envelope: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	uids := map[imap.UID]bool{}
	var lines []string
	for _, m := range msgs {
		if uids[m.UID] {
			t.Fatalf("%s on %s: UID %d twice", mailbox, addr, m.UID)
		}
		uids[m.UID] = true
		lines = append(lines, m.Envelope.Subject+" | "+flagString(m.Flags))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func checkView(t *testing.T, mailbox, view string, want map[string]*expected) {
	t.Helper()
	got := map[string][]string{}
	if view != "" {
		for _, line := range strings.Split(view, "\n") {
			id, flags, _ := strings.Cut(line, " | ")
			got[id] = append(got[id], flags)
		}
	}
	for id, w := range want {
		g := got[id]
		sort.Strings(g)
		wf := append([]string(nil), w.flags...)
		sort.Strings(wf)
		if len(g) != len(wf) {
			t.Errorf("%s: %s is there %d times, want %d", mailbox, id, len(g), len(wf))
			continue
		}
		for i := range g {
			if g[i] != wf[i] {
				t.Errorf("%s: %s has flags %q, want %q", mailbox, id, g, wf)
				break
			}
		}
	}
	for id := range got {
		if want[id] == nil {
			t.Errorf("%s: %s should not be there (expunged or moved)", mailbox, id)
		}
	}
}

// runTwoNodeWorkers runs the two-node workload: two workers on each node,
// user1, with a logged seed. Worker errors fail the test; it returns what
// the mailboxes must hold.
func runTwoNodeWorkers(t *testing.T, a, b *Node) *expectation {
	t.Helper()
	exp := &expectation{boxes: map[string]map[string]*expected{}}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)

	const workersPerNode, opsPerWorker = 2, 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*workersPerNode)
	for w := 0; w < 2*workersPerNode; w++ {
		node := a
		if w%2 == 1 {
			node = b
		}
		w := w
		rng := rand.New(rand.NewSource(seed + int64(w)))
		c := login(t, node.Addr, "user1", nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := twoNodeWorker(c, w, rng, opsPerWorker, exp); err != nil {
				errs <- fmt.Errorf("worker %d: %w", w, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return exp
}
