package clustertest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestProxyCost measures what the proxy costs on loopback: the same
// session served by the user's node, reached directly and through another
// node. Sequential NOOPs give the added latency per command (p50, p99);
// pipelined FETCHes (a window of commands in flight) give the throughput.
// Rounds alternate direct and proxied runs so that load from elsewhere on
// the machine hits both alike; the median round is reported. Goals: at
// most 10% throughput loss and 0.1 ms added p50 latency. It only reports:
// a shared machine is no place to fail on timings.
//
//	NFSIMAP_BENCH=1 go test -run TestProxyCost -v ./internal/clustertest/
func TestProxyCost(t *testing.T) {
	if os.Getenv("NFSIMAP_BENCH") == "" {
		t.Skip("a benchmark: set NFSIMAP_BENCH=1 (NFSIMAP_BENCH_ROUNDS, default 5)")
	}
	rounds := 5
	if n, err := strconv.Atoi(os.Getenv("NFSIMAP_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	h := newHarness(t, []string{"127.0.0.51", "127.0.0.52"}, 4)
	h.startAll()
	ur, err := h.where(h.nodes[0], "u0")
	if err != nil {
		t.Fatal(err)
	}
	owner := byName(h.nodes, ur.ServedBy)
	other := h.nodes[0]
	if other == owner {
		other = h.nodes[1]
	}

	// Ten messages of about 2 KB, so FETCH has something to say.
	c, err := dial("", owner.imap)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.login("u0"); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		msg := fmt.Sprintf("From: a@example.org\r\nSubject: message %d\r\n\r\n%s\r\n", i, strings.Repeat("x", 2000))
		if _, err := c.cmd(fmt.Sprintf("APPEND INBOX {%d+}\r\n%s", len(msg), msg)); err != nil {
			t.Fatal(err)
		}
	}
	c.logout()
	c.close()

	const (
		noops   = 2000
		fetches = 10000
		window  = 32
	)
	// rate in commands/s; p50, p99 in ms; cpu per command of the owner
	// and the other node in µs, during the pipelined FETCHes.
	// Syscalls (read+write) per command of both, likewise.
	type result struct{ p50, p99, rate, ownerCPU, otherCPU, ownerSys, otherSys float64 }
	run := func(entry *proc) result {
		c, err := dial("", entry.imap)
		if err != nil {
			t.Fatal(err)
		}
		defer c.close()
		if err := c.login("u0"); err != nil {
			t.Fatal(err)
		}
		if name, err := c.nodeName(); err != nil || name != owner.name {
			t.Fatalf("served by %q (%v), want %s", name, err, owner.name)
		}
		if _, err := c.cmd("SELECT INBOX"); err != nil {
			t.Fatal(err)
		}
		if out, err := c.cmd("FETCH 1:* (FLAGS UID)"); err != nil || strings.Count(out, " FETCH (") != 10 {
			t.Fatalf("FETCH: %v\n%s", err, out)
		}
		c.conn.SetDeadline(time.Now().Add(5 * time.Minute))
		lat := make([]float64, noops)
		for i := range noops {
			start := time.Now()
			if _, err := c.cmd("NOOP"); err != nil {
				t.Fatal(err)
			}
			lat[i] = float64(time.Since(start).Microseconds()) / 1000
		}
		slices.Sort(lat)
		o0, x0 := cpuTime(owner), cpuTime(other)
		os0, xs0 := ioCalls(owner), ioCalls(other)
		rate := pipelined(t, c, fetches, window)
		o1, x1 := cpuTime(owner), cpuTime(other)
		os1, xs1 := ioCalls(owner), ioCalls(other)
		perCmd := func(d time.Duration) float64 { return float64(d.Microseconds()) / fetches }
		return result{lat[noops/2], lat[noops*99/100], rate, perCmd(o1 - o0), perCmd(x1 - x0),
			float64(os1-os0) / fetches, float64(xs1-xs0) / fetches}
	}
	var direct, proxied []result
	for range rounds {
		direct = append(direct, run(owner))
		proxied = append(proxied, run(other))
	}
	median := func(rs []result, f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	p50 := func(r result) float64 { return r.p50 }
	p99 := func(r result) float64 { return r.p99 }
	rate := func(r result) float64 { return r.rate }
	dp50, pp50 := median(direct, p50), median(proxied, p50)
	drate, prate := median(direct, rate), median(proxied, rate)
	t.Logf("%d rounds of %d sequential NOOPs and %d FETCH 1:* (FLAGS UID) with %d in flight", rounds, noops, fetches, window)
	t.Logf("direct  (%s): NOOP p50 %.3f ms p99 %.3f ms; FETCH %.0f/s", owner.name, dp50, median(direct, p99), drate)
	t.Logf("proxied (%s->%s): NOOP p50 %.3f ms p99 %.3f ms; FETCH %.0f/s", other.name, owner.name, pp50, median(proxied, p99), prate)
	ocpu := func(r result) float64 { return r.ownerCPU }
	xcpu := func(r result) float64 { return r.otherCPU }
	t.Logf("CPU per pipelined FETCH: direct: %s %.1f µs; proxied: %s %.1f µs + proxy %s %.1f µs",
		owner.name, median(direct, ocpu), owner.name, median(proxied, ocpu), other.name, median(proxied, xcpu))
	osys := func(r result) float64 { return r.ownerSys }
	xsys := func(r result) float64 { return r.otherSys }
	t.Logf("read+write syscalls per pipelined FETCH: direct: %s %.2f; proxied: %s %.2f + proxy %s %.2f",
		owner.name, median(direct, osys), owner.name, median(proxied, osys), other.name, median(proxied, xsys))
	t.Logf("proxy cost: +%.3f ms p50 per command (goal <= 0.1), throughput loss %.1f%% (goal <= 10%%)", pp50-dp50, 100*(1-prate/drate))
	// Each round's proxied run against the direct run just before it:
	// less sensitive to load that comes and goes over the whole test.
	losses := make([]float64, rounds)
	for i := range rounds {
		losses[i] = 100 * (1 - proxied[i].rate/direct[i].rate)
	}
	slices.Sort(losses)
	t.Logf("throughput loss per round: median %.1f%%, from %.1f%% to %.1f%%", losses[rounds/2], losses[0], losses[rounds-1])
}

// cpuTime returns the CPU time node p's process has used so far: the
// sum over its threads of /proc/PID/task/TID/schedstat (ns).
func cpuTime(p *proc) time.Duration {
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum time.Duration
	for _, path := range tasks {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			sum += time.Duration(ns)
		}
	}
	return sum
}

// ioCalls returns the read and write system calls node p's process has
// made so far (/proc/PID/io), 0 when unknown.
func ioCalls(p *proc) int64 {
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	var n int64
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok && (k == "syscr" || k == "syscw") {
			x, _ := strconv.ParseInt(v, 10, 64)
			n += x
		}
	}
	return n
}

// pipelined sends n FETCH commands keeping window of them in flight and
// returns the commands per second.
func pipelined(t *testing.T, c *client, n, window int) float64 {
	t.Helper()
	errc := make(chan error, 1)
	sent := make(chan struct{}, window)
	start := time.Now()
	go func() {
		w := bufio.NewWriter(c.conn)
		for i := range n {
			sent <- struct{}{}
			fmt.Fprintf(w, "f%d FETCH 1:* (FLAGS UID)\r\n", i)
			if len(sent) == window || i == n-1 {
				if err := w.Flush(); err != nil {
					errc <- err
					return
				}
			}
		}
		errc <- nil
	}()
	for done := 0; done < n; {
		l, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatalf("pipelined FETCH: %v", err)
		}
		if strings.HasPrefix(l, "f") {
			if !strings.Contains(l, " OK") {
				t.Fatalf("pipelined FETCH: %q", l)
			}
			done++
			<-sent
		}
	}
	took := time.Since(start)
	if err := <-errc; err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return float64(n) / took.Seconds()
}
