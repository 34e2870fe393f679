package clustertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// loadResult is what one load client saw.
type loadResult struct {
	name     string
	byes     int
	commands int
	served   []string // the nodes that served it, in order
	entry    string   // the node it first entered at
	finished bool     // loadClient returned
	err      error
}

// TestDrainUnderLoad: 20 clients loop over NOOP, SELECT and FETCH and 4
// sit in IDLE, entering at every node, while the node serving most of
// them drains. Each sees at most one BYE [UNAVAILABLE], reconnects
// (at another entry node when its own is gone) and goes on; no command
// fails otherwise.
func TestDrainUnderLoad(t *testing.T) {
	h := newHarness(t, []string{"127.0.0.41", "127.0.0.42", "127.0.0.43"}, 8)
	h.startAll()
	owner := map[string]string{}
	count := map[string]int{}
	for _, u := range h.users {
		ur, err := h.where(h.nodes[0], u)
		if err != nil {
			t.Fatal(err)
		}
		owner[u] = ur.ServedBy
		count[ur.ServedBy]++
	}
	victim := h.nodes[0]
	for _, p := range h.nodes {
		if count[p.name] > count[victim.name] {
			victim = p
		}
	}
	t.Logf("owners %v; draining %s", count, victim.name)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	const busy, idle = 20, 4
	results := make([]loadResult, busy+idle)
	var wg sync.WaitGroup
	ready := make(chan struct{}, busy+idle)
	for i := range busy + idle {
		user := h.users[i%len(h.users)]
		// Entry nodes in order, starting at a different one per client:
		// after a BYE the client tries them from its own again.
		var entries []string
		for j := range h.nodes {
			entries = append(entries, h.nodes[(i+j)%len(h.nodes)].imap)
		}
		r := &results[i]
		r.name = fmt.Sprintf("client %d (%s, idle=%v)", i, user, i >= busy)
		r.entry = h.nodes[i%len(h.nodes)].name
		wg.Go(func() {
			err := loadClient(ctx, entries, user, i >= busy, r, ready)
			resultsMu.Lock()
			r.err, r.finished = err, true
			resultsMu.Unlock()
		})
	}
	for range busy + idle {
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			t.Fatal("clients did not log in")
		}
	}

	out, err := exec.Command(h.bin, "drain", "-s", victim.socket).CombinedOutput()
	if err != nil {
		t.Fatalf("drain: %v\n%s", err, out)
	}
	// Every client that got BYE logs in again, and the busy ones run a
	// few more commands.
	resultsMu.Lock()
	before := make([]int, len(results))
	for i := range results {
		before[i] = results[i].commands
	}
	resultsMu.Unlock()
	waitFor(t, "clients to reconnect after the drain", 20*time.Second, func() bool {
		if !reconnected(results, victim.name) {
			return false
		}
		resultsMu.Lock()
		defer resultsMu.Unlock()
		for i := range busy {
			if !results[i].finished && results[i].commands < before[i]+8 {
				return false
			}
		}
		return true
	})
	stop()
	wg.Wait()
	var (
		byes, cmds int
		cut        []string // see below
	)
	for _, r := range results {
		byes += r.byes
		cmds += r.commands
		if r.err != nil && r.entry == victim.name && len(r.served) == 1 && r.served[0] != victim.name && !errors.Is(r.err, errBye) {
			// Known defect of node/cluster: a session the drained
			// node relays to a peer is cut without BYE when the
			// drain ends (the relay copies bytes and cannot tell a
			// response boundary to put BYE at).
			cut = append(cut, fmt.Sprintf("%s via %s to %s: %v", r.name, r.entry, r.served[0], r.err))
			continue
		}
		if r.err != nil {
			t.Errorf("%s: %v (entered at %s, served by %v)", r.name, r.err, r.entry, r.served)
		}
		if r.byes > 1 {
			t.Errorf("%s: %d BYEs (served by %v)", r.name, r.byes, r.served)
		}
		for j, s := range r.served {
			if j > 0 && s == victim.name {
				t.Errorf("%s: served by the drained node after a reconnect: %v", r.name, r.served)
			}
		}
	}
	t.Logf("%d clients, %d commands, %d BYEs", len(results), cmds, byes)
	if byes == 0 {
		t.Error("no client saw the drain")
	}
	if len(cut) > 0 && !t.Failed() {
		t.Errorf("%d sessions relayed by the drained node to a peer ended without BYE [UNAVAILABLE]:\n%s",
			len(cut), strings.Join(cut, "\n"))
	}
}

// resultsMu guards the served and commands fields of the load clients'
// results while they run.
var resultsMu sync.Mutex

// reconnected reports whether every client served by the drained node has
// been served elsewhere since.
func reconnected(results []loadResult, drained string) bool {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	for i := range results {
		s := results[i].served
		if len(s) > 0 && s[len(s)-1] == drained {
			return false
		}
	}
	return true
}

// loadClient logs user in at the first entry that answers and loops over
// NOOP, SELECT, FETCH (or IDLE) until ctx ends. After a BYE it
// reconnects; a second BYE, or any other failure, ends it with an error.
func loadClient(ctx context.Context, entries []string, user string, idle bool, r *loadResult, ready chan<- struct{}) error {
	first := true
	for {
		c, err := dialAny(entries)
		if err != nil {
			return err
		}
		served, err := func() (string, error) {
			if err := c.login(user); err != nil {
				return "", err
			}
			return c.nodeName()
		}()
		if err != nil {
			c.close()
			return fmt.Errorf("login: %w", err)
		}
		resultsMu.Lock()
		r.served = append(r.served, served)
		resultsMu.Unlock()

		if first {
			ready <- struct{}{}
			first = false
		}
		if idle {
			err = idleLoop(ctx, c, r)
		} else {
			err = busyLoop(ctx, c, r)
		}
		if errors.Is(err, errBye) {
			c.close()
			r.byes++
			if !strings.Contains(err.Error(), "UNAVAILABLE") {
				return fmt.Errorf("BYE without [UNAVAILABLE]: %w", err)
			}
			if r.byes > 1 {
				return err
			}
			continue
		}
		if errors.Is(err, errLoggedOut) {
			c.close()
			return nil
		}
		if err != nil {
			c.close()
			return err
		}
		err = c.logout()
		c.close()
		return err
	}
}

// dialAny connects to the first entry that accepts.
func dialAny(entries []string) (*client, error) {
	var errs []error
	for _, e := range entries {
		c, err := dial("", e)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func busyLoop(ctx context.Context, c *client, r *loadResult) error {
	for ctx.Err() == nil {
		for _, cmd := range []string{"NOOP", "SELECT INBOX", "FETCH 1:* (FLAGS UID)", "NOOP"} {
			if _, err := c.cmd(cmd); err != nil {
				return err
			}
			resultsMu.Lock()
			r.commands++
			resultsMu.Unlock()
		}
	}
	return nil
}

// idleLoop sits in IDLE until ctx ends (then DONE) or the server says BYE.
func idleLoop(ctx context.Context, c *client, r *loadResult) error {
	if _, err := c.cmd("SELECT INBOX"); err != nil {
		return err
	}
	c.n++
	tag := fmt.Sprintf("t%d", c.n)
	c.conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(c.conn, tag+" IDLE\r\n"); err != nil {
		return err
	}
	l, err := c.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(l, "+") {
		return fmt.Errorf("IDLE: %q %v", l, err)
	}
	lines := make(chan line, 64)
	go func() {
		for {
			l, err := c.br.ReadString('\n')
			lines <- line{l, err}
			if err != nil {
				return
			}
		}
	}()
	done := false
	for {
		select {
		case <-ctx.Done():
			if !done {
				done = true
				c.conn.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(c.conn, "DONE\r\n"); err != nil {
					return err
				}
			}
		case l := <-lines:
			switch {
			case l.err != nil:
				return fmt.Errorf("IDLE: %w", l.err)
			case strings.HasPrefix(l.s, "* BYE"):
				return fmt.Errorf("IDLE: %w: %q", errBye, l.s)
			case strings.HasPrefix(l.s, tag+" OK"):
				resultsMu.Lock()
				r.commands++
				resultsMu.Unlock()
				// The reader goroutine owns the connection's reader now:
				// LOGOUT is read here.
				return idleLogoutVia(c, lines)
			case strings.HasPrefix(l.s, tag+" "):
				return fmt.Errorf("IDLE: %q", l.s)
			}
		}
	}
}

// line is one line read, or the error that ended the reading.
type line struct {
	s   string
	err error
}

// idleLogoutVia logs out while the line reader goroutine owns the
// connection's reader.
func idleLogoutVia(c *client, lines <-chan line) error {
	c.n++
	tag := fmt.Sprintf("t%d", c.n)
	if _, err := io.WriteString(c.conn, tag+" LOGOUT\r\n"); err != nil {
		return err
	}
	for l := range lines {
		if l.err != nil {
			return fmt.Errorf("LOGOUT: %w", l.err)
		}
		if strings.HasPrefix(l.s, tag+" ") {
			if !strings.HasPrefix(l.s, tag+" OK") {
				return fmt.Errorf("LOGOUT: %q", l.s)
			}
			return errLoggedOut
		}
	}
	return nil
}

// errLoggedOut tells loadClient the session already ended in order.
var errLoggedOut = errors.New("logged out")
