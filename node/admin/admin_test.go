package admin

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nfsimap/nfsimap/ring"
)

func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.SocketPath == "" {
		cfg.SocketPath = filepath.Join(t.TempDir(), "run", "admin.sock")
	}
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

func TestRoundTrips(t *testing.T) {
	snap, _ := ring.NewSnapshot([]ring.Member{
		{Name: "n1", Addr: "10.0.0.1:1144", State: ring.StateAlive, Gossip: "10.0.0.1:7946", Version: "1.0"},
		{Name: "n2", Addr: "10.0.0.2:1144", State: ring.StateAlive},
		{Name: "n3", Addr: "10.0.0.3:1144", State: ring.StateDraining},
	})
	reg := NewRegistry()
	now := time.Now()
	var kicked atomic.Int32
	removeA := reg.Add(Entry{ID: "c1", User: "alice", Remote: "192.0.2.1:4000", Since: now.Add(-time.Minute), Kind: "local", TLS: true}, func() { kicked.Add(1) })
	reg.Add(Entry{ID: "c2", User: "alice", Remote: "192.0.2.2:4000", Since: now, Kind: "proxied", Peer: "n2"}, func() { kicked.Add(1) })
	reg.Add(Entry{ID: "c3", User: "bob", Remote: "192.0.2.3:4000", Since: now, Kind: "internal"}, func() { kicked.Add(100) })
	drained := make(chan struct{}, 1)
	s := startServer(t, Config{
		NodeName:    "n1",
		Ring:        func() *ring.Snapshot { return snap },
		Registry:    reg,
		ShareSample: 2000,
		Drain: func(context.Context) error {
			drained <- struct{}{}
			return nil
		},
	})
	fi, err := os.Stat(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	ctx := context.Background()
	c := NewClient(s.Addr())

	rep, err := c.Ring(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Self != "n1" || len(rep.Members) != 3 || rep.Members[2].Share != 0 || rep.Members[0].Share+rep.Members[1].Share < 0.99 {
		t.Errorf("ring = %+v", rep)
	}
	var out bytes.Buffer
	if err := Run(ctx, s.Addr(), "ring", nil, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "n1 *") || !strings.Contains(out.String(), "draining") || !strings.Contains(out.String(), "3 member(s)") {
		t.Errorf("ring table:\n%s", out.String())
	}

	where, err := c.Where(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	first, _ := snap.FirstAlive("alice")
	if where.User != "alice" || len(where.Preference) != 3 || where.ServedBy != first.Name {
		t.Errorf("where = %+v", where)
	}
	out.Reset()
	if err := Run(ctx, s.Addr(), "where", []string{"alice"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "user alice is served by "+first.Name) {
		t.Errorf("where table:\n%s", out.String())
	}
	if _, err := c.Where(ctx, ""); !errors.Is(err, ErrRemote) {
		t.Errorf("where without user: %v", err)
	}

	who, err := c.Who(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(who) != 3 || who[0].ID != "c1" || who[1].ID != "c2" || who[2].User != "bob" {
		t.Errorf("who = %+v", who)
	}
	out.Reset()
	if err := Run(ctx, s.Addr(), "who", nil, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "2 user(s), 3 connection(s)") || !strings.Contains(out.String(), "proxied") {
		t.Errorf("who table:\n%s", out.String())
	}

	out.Reset()
	if err := Run(ctx, s.Addr(), "kick", []string{"alice"}, &out); err != nil {
		t.Fatal(err)
	}
	if kicked.Load() != 2 || !strings.Contains(out.String(), "2 connection(s) ended") {
		t.Errorf("kick: %d kicked, output %q", kicked.Load(), out.String())
	}
	removeA()
	removeA()
	if reg.Len() != 2 {
		t.Errorf("registry has %d after a remove", reg.Len())
	}

	out.Reset()
	if err := Run(ctx, s.Addr(), "drain", nil, &out); err != nil {
		t.Fatal(err)
	}
	select {
	case <-drained:
	default:
		t.Error("drain did not reach the node")
	}

	if err := Run(ctx, s.Addr(), "where", nil, &out); !errors.Is(err, ErrUsage) {
		t.Errorf("where without user: %v", err)
	}
	if err := Run(ctx, s.Addr(), "bogus", nil, &out); !errors.Is(err, ErrUsage) {
		t.Errorf("unknown command: %v", err)
	}
}

func TestSocketInUseAndStale(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	startServer(t, Config{SocketPath: path})
	if _, err := Listen(Config{SocketPath: path}); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Listen: %v, want ErrInUse", err)
	}

	stale := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(stale); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, Config{SocketPath: stale})
	if _, err := NewClient(s.Addr()).Who(context.Background()); err != nil {
		t.Fatalf("after replacing a stale socket: %v", err)
	}
}

func TestNoClusterNoDrain(t *testing.T) {
	s := startServer(t, Config{NodeName: "solo"})
	c := NewClient(s.Addr())
	rep, err := c.Ring(context.Background())
	if err != nil || len(rep.Members) != 0 {
		t.Fatalf("ring = %+v, %v", rep, err)
	}
	if err := c.Drain(context.Background()); !errors.Is(err, ErrRemote) {
		t.Errorf("drain without a drainer: %v", err)
	}
	who, err := c.Who(context.Background())
	if err != nil || len(who) != 0 {
		t.Errorf("who = %v, %v", who, err)
	}
}

func TestClientNoNode(t *testing.T) {
	err := Run(context.Background(), filepath.Join(t.TempDir(), "none.sock"), "who", nil, &bytes.Buffer{})
	if err == nil || errors.Is(err, ErrRemote) {
		t.Errorf("no node: %v", err)
	}
}
