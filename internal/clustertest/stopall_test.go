package clustertest

import (
	"syscall"
	"testing"
	"time"
)

// TestStopAllAtOnce: SIGTERM to every node at the same moment (a whole
// cluster shut down) lets each process drain and exit in about its drain
// grace (1 s here) plus a moment, not after waiting out the ring's leave
// timeout (10 s) because no peer is left to hear its leave.
func TestStopAllAtOnce(t *testing.T) {
	h := newHarness(t, []string{"127.0.0.61", "127.0.0.62", "127.0.0.63"}, 2)
	h.startAll()
	const limit = 6 * time.Second // drain grace 1 s; the leave timeout is 10 s
	type exit struct {
		name string
		took time.Duration
	}
	exits := make(chan exit, len(h.nodes))
	start := time.Now()
	for _, p := range h.nodes {
		p.mu.Lock()
		cmd, exited := p.cmd, p.exited
		p.mu.Unlock()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM to %s: %v", p.name, err)
		}
		go func() {
			err := <-exited
			exited <- err // for the harness's cleanup
			exits <- exit{p.name, time.Since(start)}
		}()
	}
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for range h.nodes {
		select {
		case e := <-exits:
			t.Logf("%s exited %v after the SIGTERMs", e.name, e.took.Round(time.Millisecond))
		case <-deadline.C:
			for _, p := range h.nodes {
				t.Logf("log of %s ends:\n%s", p.name, tail(p.Log(), 15))
			}
			t.Fatalf("not every node exited within %v of a SIGTERM to all", limit)
		}
	}
}
