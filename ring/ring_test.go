package ring

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// testKey is the gossip key of the test clusters.
var testKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// freePort returns a loopback port that was free for both TCP and UDP a
// moment ago (memberlist needs the same port for both).
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		_ = l.Close()
		if err != nil {
			continue
		}
		_ = u.Close()
		return port
	}
	t.Fatal("no free port for TCP and UDP")
	return 0
}

// lockedBuffer collects a node's log; it is dumped when the test fails.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testNode struct {
	*Ring
	cfg  Config
	logs *lockedBuffer
}

// startNode starts a ring node on 127.0.0.1 with fast timings. port 0
// lets memberlist pick one.
func startNode(t *testing.T, name string, port int, seeds []string, mod func(*Config)) *testNode {
	t.Helper()
	n := newNode(t, name, port, seeds, mod)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Join(ctx); err != nil {
		t.Fatalf("%s: join: %v", name, err)
	}
	return n
}

// newNode is startNode without the join.
func newNode(t *testing.T, name string, port int, seeds []string, mod func(*Config)) *testNode {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeName = name
	cfg.InternalAddr = "127.0.0.1:" + strconv.Itoa(10000+len(name))
	cfg.Version = "test-1"
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = port
	cfg.Seeds = seeds
	cfg.SecretKey = testKey
	cfg.ClusterLabel = "nfsimap-test"
	cfg.Profile = ProfileLocal
	cfg.JoinRetryMax = 200 * time.Millisecond
	cfg.BroadcastTimeout = 3 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	logs := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, logs.String())
		}
	})
	r, err := New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return &testNode{Ring: r, cfg: cfg, logs: logs}
}

// waitSnapshot waits until cond holds for r's snapshot, woken by r's
// change notifications, and fails the test after timeout.
func waitSnapshot(t *testing.T, r *Ring, timeout time.Duration, what string, cond func(*Snapshot) bool) time.Duration {
	t.Helper()
	start := time.Now()
	ch, cancel := r.Subscribe()
	defer cancel()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if cond(r.Snapshot()) {
			return time.Since(start)
		}
		select {
		case <-ch:
		case <-deadline.C:
			s, _ := r.Snapshot().MarshalJSON()
			t.Fatalf("%s: %s not seen within %v; snapshot %s", r.Name(), what, timeout, s)
		}
	}
}

func hasMembers(names ...string) func(*Snapshot) bool {
	return func(s *Snapshot) bool {
		if s.Len() != len(names) {
			return false
		}
		for _, n := range names {
			if _, ok := s.Member(n); !ok {
				return false
			}
		}
		return true
	}
}

func TestRingCluster(t *testing.T) {
	a := startNode(t, "node-a", freePort(t), nil, nil)
	seeds := []string{a.GossipAddr()}
	b := startNode(t, "node-b", freePort(t), seeds, nil)
	c := startNode(t, "node-c", freePort(t), seeds, nil)
	d := startNode(t, "node-d", 0, seeds, nil) // system-chosen port
	nodes := []*testNode{a, b, c, d}

	for _, n := range nodes {
		waitSnapshot(t, n.Ring, 5*time.Second, "all four members", hasMembers("node-a", "node-b", "node-c", "node-d"))
	}
	// Metadata arrived intact, and every node computes the same owners.
	mb, _ := a.Snapshot().Member("node-b")
	if mb.Addr != b.cfg.InternalAddr || mb.State != StateAlive || mb.Version != "test-1" || mb.Gossip != b.GossipAddr() {
		t.Fatalf("node-a sees node-b as %+v", mb)
	}
	for i := range 50 {
		user := fmt.Sprintf("user%d", i)
		want := names(a.Snapshot().Owners(user, 0, nil))
		for _, n := range nodes[1:] {
			if got := names(n.Snapshot().Owners(user, 0, nil)); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s: owners of %s = %v, node-a says %v", n.Name(), user, got, want)
			}
		}
	}

	// Draining propagates; routing skips the draining node.
	// A broadcast timeout (a loaded test machine) is not a failure: the
	// state is in effect and spreads by gossip, which the waits below check.
	if err := b.SetState(StateDraining); err != nil && !errors.Is(err, ErrBroadcastTimeout) {
		t.Fatal(err)
	}
	if b.State() != StateDraining {
		t.Fatal("local state not draining")
	}
	for _, n := range nodes {
		el := waitSnapshot(t, n.Ring, 5*time.Second, "node-b draining", func(s *Snapshot) bool {
			m, ok := s.Member("node-b")
			return ok && m.State == StateDraining
		})
		t.Logf("%s saw node-b draining after %v", n.Name(), el)
	}
	for i := range 200 {
		if m, _ := a.Snapshot().FirstAlive(fmt.Sprintf("user%d", i)); m.Name == "node-b" {
			t.Fatal("a draining node was chosen")
		}
	}
	if err := b.SetState(StateAlive); err != nil && !errors.Is(err, ErrBroadcastTimeout) {
		t.Fatal(err)
	}
	waitSnapshot(t, a.Ring, 5*time.Second, "node-b alive again", func(s *Snapshot) bool {
		m, ok := s.Member("node-b")
		return ok && m.State == StateAlive
	})

	// A graceful leave is seen quickly.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Leave(ctx); err != nil && !errors.Is(err, ErrBroadcastTimeout) {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{a, b, d} {
		el := waitSnapshot(t, n.Ring, 3*time.Second, "node-c gone after leave", hasMembers("node-a", "node-b", "node-d"))
		t.Logf("%s saw node-c leave after %v", n.Name(), el)
	}

	// A crash (no leave) is detected by failure detection.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{a, b} {
		el := waitSnapshot(t, n.Ring, 5*time.Second, "node-d gone after crash", hasMembers("node-a", "node-b"))
		t.Logf("%s saw node-d dead after %v", n.Name(), el)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := d.SetState(StateAlive); !errors.Is(err, ErrClosed) {
		t.Errorf("SetState after Close: %v", err)
	}
	if err := d.Leave(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Leave after Close: %v", err)
	}
}

func TestRingRejoinAfterRestart(t *testing.T) {
	a := startNode(t, "node-a", freePort(t), nil, nil)
	seeds := []string{a.GossipAddr()}
	bPort := freePort(t)
	b := startNode(t, "node-b", bPort, seeds, nil)
	cPort := freePort(t)
	c := startNode(t, "node-c", cPort, seeds, nil)
	waitSnapshot(t, a.Ring, 5*time.Second, "three members", hasMembers("node-a", "node-b", "node-c"))

	// Crash node-c and wait until the others declared it dead.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, a.Ring, 5*time.Second, "node-c dead", hasMembers("node-a", "node-b"))
	waitSnapshot(t, b.Ring, 5*time.Second, "node-c dead", hasMembers("node-a", "node-b"))

	// It comes back on the same address with a new version, joining in
	// the background.
	c2 := newNode(t, "node-c", cPort, seeds, func(c *Config) { c.Version = "test-2" })
	c2.JoinInBackground(context.Background())
	for _, n := range []*testNode{a, b, c2} {
		el := waitSnapshot(t, n.Ring, 5*time.Second, "node-c back with version test-2", func(s *Snapshot) bool {
			m, ok := s.Member("node-c")
			return ok && m.Version == "test-2" && m.State == StateAlive && s.Len() == 3
		})
		t.Logf("%s saw node-c back after %v", n.Name(), el)
	}

	// A node that left gracefully comes back the same way.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := b.Leave(ctx); err != nil && !errors.Is(err, ErrBroadcastTimeout) {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, a.Ring, 5*time.Second, "node-b gone", hasMembers("node-a", "node-c"))
	b2 := startNode(t, "node-b", bPort, seeds, nil)
	for _, n := range []*testNode{a, b2, c2} {
		waitSnapshot(t, n.Ring, 5*time.Second, "node-b back", hasMembers("node-a", "node-b", "node-c"))
	}
}

func TestRingWrongKeyCannotJoin(t *testing.T) {
	a := startNode(t, "node-a", freePort(t), nil, nil)
	cfg := DefaultConfig()
	cfg.NodeName = "intruder"
	cfg.InternalAddr = "127.0.0.1:1"
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = freePort(t)
	cfg.Seeds = []string{a.GossipAddr()}
	cfg.SecretKey = base64.StdEncoding.EncodeToString([]byte("another key 16 b"))
	cfg.ClusterLabel = "nfsimap-test"
	cfg.Profile = ProfileLocal
	cfg.JoinRetryMax = 100 * time.Millisecond
	r, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := r.Join(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("join with the wrong key: err = %v", err)
	}
	if _, ok := a.Snapshot().Member("intruder"); ok || a.Snapshot().Len() != 1 {
		t.Fatal("node with the wrong key got in")
	}
}

func TestRingJoinStoppedByClose(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NodeName = "lonely"
	cfg.InternalAddr = "127.0.0.1:1"
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = freePort(t)
	cfg.Seeds = []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))} // nobody there
	cfg.Profile = ProfileLocal
	cfg.JoinRetryMax = 50 * time.Millisecond
	logs := &signalWriter{want: []byte("ring join failed"), seen: make(chan struct{})}
	r, err := New(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Snapshot(); s.Len() != 1 || s.Epoch() == 0 {
		t.Fatalf("a new ring's snapshot should hold itself: %d members, epoch %d", s.Len(), s.Epoch())
	}
	done := make(chan error, 1)
	go func() { done <- r.Join(context.Background()) }()
	// Join keeps retrying: wait for its first failure, then close.
	select {
	case <-logs.seen:
	case <-time.After(10 * time.Second):
		t.Fatal("Join never reported a failed attempt")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Join after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Join did not stop after Close")
	}
}

// signalWriter closes seen when a write contains want.
type signalWriter struct {
	want []byte
	once sync.Once
	seen chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

// badMetaDelegate is a raw memberlist peer's delegate that publishes
// metadata this release cannot read, until fixed is set.
type badMetaDelegate struct {
	mu    sync.Mutex
	fixed bool
}

func (d *badMetaDelegate) NodeMeta(int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fixed {
		b, _ := nodeMeta{State: StateAlive, Addr: "127.0.0.1:7"}.encode()
		return b
	}
	return []byte{9, 9, 9}
}
func (d *badMetaDelegate) NotifyMsg([]byte)                {}
func (d *badMetaDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d *badMetaDelegate) LocalState(bool) []byte          { return nil }
func (d *badMetaDelegate) MergeRemoteState([]byte, bool)   {}

func TestRingPeerWithBadMetadata(t *testing.T) {
	a := startNode(t, "node-a", freePort(t), nil, nil)
	ch, cancel := a.Subscribe()
	defer cancel()

	key, _ := base64.StdEncoding.DecodeString(testKey)
	mlc := memberlist.DefaultLocalConfig()
	mlc.Name = "odd-peer"
	mlc.BindAddr = "127.0.0.1"
	mlc.BindPort = 0
	mlc.SecretKey = key
	mlc.Label = "nfsimap-test"
	mlc.LogOutput = &lockedBuffer{}
	del := &badMetaDelegate{}
	mlc.Delegate = del
	peer, err := memberlist.Create(mlc)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = peer.Shutdown() }()
	if _, err := peer.Join([]string{a.GossipAddr()}); err != nil {
		t.Fatal(err)
	}
	// The peer is in memberlist's view but not in the ring.
	deadline := time.Now().Add(5 * time.Second)
	for a.ml.NumMembers() != 2 {
		if time.Now().After(deadline) {
			t.Fatal("peer never joined memberlist")
		}
		select {
		case <-ch: // the snapshot does not change, but wait a little anyway
		case <-time.After(20 * time.Millisecond):
		}
	}
	if s := a.Snapshot(); s.Len() != 1 {
		t.Fatalf("peer with bad metadata is in the snapshot: %d members", s.Len())
	}
	if !bytes.Contains([]byte(a.logs.String()), []byte("unreadable metadata")) {
		t.Fatal("bad metadata was not logged")
	}
	// Once its metadata is readable, it becomes a member.
	del.mu.Lock()
	del.fixed = true
	del.mu.Unlock()
	if err := peer.UpdateNode(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, a.Ring, 5*time.Second, "fixed peer", hasMembers("node-a", "odd-peer"))
}

func TestSubscribeCoalesces(t *testing.T) {
	n := startNode(t, "solo", 0, nil, nil)
	ch, cancel := n.Subscribe()
	for range 3 {
		n.notify()
	}
	select {
	case <-ch:
	default:
		t.Fatal("no notification")
	}
	select {
	case <-ch:
		t.Fatal("notifications did not coalesce")
	default:
	}
	cancel()
	n.notify()
	select {
	case <-ch:
		t.Fatal("notified after cancel")
	default:
	}
	if s := n.Snapshot(); s.Len() != 1 || s.Epoch() == 0 {
		t.Fatalf("solo snapshot: %d members, epoch %d", s.Len(), s.Epoch())
	}
	if err := n.Join(context.Background()); err != nil {
		t.Fatalf("join without seeds: %v", err)
	}
}

// A node whose seed is not up yet keeps trying and gets in once it is.
func TestRingJoinRetriesUntilSeedIsUp(t *testing.T) {
	aPort := freePort(t)
	seed := net.JoinHostPort("127.0.0.1", strconv.Itoa(aPort))
	b := newNode(t, "node-b", freePort(t), []string{seed}, nil)
	b.JoinInBackground(context.Background())
	// Let it fail at least once before the seed starts.
	deadline := time.Now().Add(10 * time.Second)
	for !bytes.Contains([]byte(b.logs.String()), []byte("ring join failed")) {
		if time.Now().After(deadline) {
			t.Fatal("no failed join attempt logged")
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-t.Context().Done():
			return
		}
	}
	a := startNode(t, "node-a", aPort, nil, nil)
	waitSnapshot(t, a.Ring, 10*time.Second, "node-b joined", hasMembers("node-a", "node-b"))
	waitSnapshot(t, b.Ring, 10*time.Second, "node-a seen", hasMembers("node-a", "node-b"))
}

// TestRingAllLeaveAtOnce: when every node leaves at the same moment (all
// stopped together), each Leave returns promptly, long before the
// broadcast timeout: once the others are gone there is nobody to tell.
// memberlist alone waits out the timeout on the node whose peers left
// before its leave message went out.
func TestRingAllLeaveAtOnce(t *testing.T) {
	const timeout = 20 * time.Second
	long := func(c *Config) { c.BroadcastTimeout = timeout }
	for round := range 3 {
		a := startNode(t, fmt.Sprintf("r%d-a", round), 0, nil, long)
		seeds := []string{a.GossipAddr()}
		b := startNode(t, fmt.Sprintf("r%d-b", round), 0, seeds, long)
		c := startNode(t, fmt.Sprintf("r%d-c", round), 0, seeds, long)
		nodes := []*testNode{a, b, c}
		all := hasMembers(a.Name(), b.Name(), c.Name())
		for _, n := range nodes {
			waitSnapshot(t, n.Ring, 5*time.Second, "all three members", all)
		}
		// As the daemon does on SIGTERM: Leave, then Close.
		type result struct {
			name string
			took time.Duration
			err  error
		}
		results := make(chan result, len(nodes))
		start := make(chan struct{})
		for _, n := range nodes {
			go func() {
				<-start
				t0 := time.Now()
				err := n.Leave(context.Background())
				took := time.Since(t0)
				n.Close()
				results <- result{n.Name(), took, err}
			}()
		}
		close(start)
		for range nodes {
			r := <-results
			t.Logf("round %d: %s left in %v (%v)", round, r.name, r.took.Round(time.Millisecond), r.err)
			if r.err != nil || r.took > timeout/4 {
				t.Errorf("%s: Leave took %v (%v); want nil well before the %v timeout", r.name, r.took, r.err, timeout)
			}
		}
	}
}
