package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nfsimap/nfsimap/nfslock"
	"github.com/nfsimap/nfsimap/ring"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func newHandler(t *testing.T, mod func(*Config)) *Handler {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeName = "n1"
	if mod != nil {
		mod(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHealthz(t *testing.T) {
	spool := t.TempDir()
	h := newHandler(t, func(c *Config) { c.SpoolRoot = spool })
	if code, body := get(t, h, "/healthz"); code != http.StatusOK {
		t.Fatalf("healthz = %d %q", code, body)
	}
	// The round trip left no lock behind.
	if _, err := os.Stat(filepath.Join(spool, ".nfsimap-health", "n1.health.lock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("health lock left behind: %v", err)
	}

	gone := newHandler(t, func(c *Config) { c.SpoolRoot = filepath.Join(spool, "missing") })
	if code, body := get(t, gone, "/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "spool root") {
		t.Fatalf("healthz without spool = %d %q", code, body)
	}

	none := newHandler(t, nil)
	if code, _ := get(t, none, "/healthz"); code != http.StatusOK {
		t.Fatalf("healthz with no spool configured = %d", code)
	}
}

// TestHealthzLockHeld: a dot-lock that stays held fails the check within
// the timeout.
func TestHealthzLockHeld(t *testing.T) {
	spool := t.TempDir()
	h := newHandler(t, func(c *Config) { c.SpoolRoot = spool; c.HealthTimeout = 300 * time.Millisecond })
	if err := os.Mkdir(filepath.Join(spool, ".nfsimap-health"), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := nfslock.Acquire(context.Background(), filepath.Join(spool, ".nfsimap-health", "n1.health"), nfslock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	start := time.Now()
	code, body := get(t, h, "/healthz")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("healthz with the lock held = %d %q", code, body)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v", took)
	}
	// Concurrent checks share the running one.
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- h.CheckSpool(context.Background()) }()
	}
	for range 4 {
		if err := <-errs; err == nil {
			t.Error("check passed with the lock held")
		}
	}
	// Let the last check finish before the directory goes.
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.checkMu.Lock()
		running := h.inflight != nil
		h.checkMu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the spool check never ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReadyz(t *testing.T) {
	h := newHandler(t, nil)
	if code, _ := get(t, h, "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz before serving = %d", code)
	}
	h.SetServing(true)
	if code, _ := get(t, h, "/readyz"); code != http.StatusOK {
		t.Fatalf("readyz serving = %d", code)
	}
	h.SetDraining(true)
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Fatalf("readyz draining = %d %q", code, body)
	}
	if !errors.Is(h.Ready(), ErrDraining) {
		t.Error("Ready is not ErrDraining")
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering twice on one registry worked")
	}
	done := m.ConnOpened(ConnLocal)
	m.ConnOpened(ConnProxied)
	done()
	m.Login(LoginOK)
	m.Login(LoginFailed)
	m.Login(LoginFailed)
	m.Proxied("n2", true)
	m.Command("FETCH", 3*time.Millisecond)
	m.SpoolOp("stat", 3)
	m.LockWait(time.Millisecond)
	s, _ := ring.NewSnapshot([]ring.Member{{Name: "a", State: ring.StateAlive}, {Name: "b", State: ring.StateDraining}, {Name: "c", State: ring.StateAlive}})
	m.ObserveRing(s)
	var nilM *Metrics
	nilM.Login(LoginOK) // no panic
	nilM.ConnOpened(ConnLocal)()

	h := newHandler(t, func(c *Config) { c.Gatherer = reg })
	code, body := get(t, h, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("metrics = %d", code)
	}
	for _, want := range []string{
		`nfsimap_connections{kind="local"} 0`,
		`nfsimap_connections{kind="proxied"} 1`,
		`nfsimap_logins_total{result="failed"} 2`,
		`nfsimap_proxied_connections_total{peer="n2",result="ok"} 1`,
		`nfsimap_command_duration_seconds_count{command="FETCH"} 1`,
		`nfsimap_spool_operations_total{op="stat"} 3`,
		`nfsimap_lock_wait_seconds_count 1`,
		`nfsimap_ring_members{state="alive"} 2`,
		`nfsimap_ring_members{state="draining"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "go_goroutines") {
		t.Error("the private registry serves the global collectors")
	}
}

func TestRing(t *testing.T) {
	s, _ := ring.NewSnapshot([]ring.Member{
		{Name: "n1", Addr: "10.0.0.1:1144", State: ring.StateAlive},
		{Name: "n2", Addr: "10.0.0.2:1144", State: ring.StateDraining},
		{Name: "n3", Addr: "10.0.0.3:1144", State: ring.StateAlive},
	})
	h := newHandler(t, func(c *Config) { c.Ring = func() *ring.Snapshot { return s } })
	code, body := get(t, h, "/ring")
	if code != http.StatusOK {
		t.Fatalf("ring = %d", code)
	}
	var info RingInfo
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatal(err)
	}
	if info.Self != "n1" || info.Ring.Len() != 3 || info.User != "" {
		t.Fatalf("ring = %s", body)
	}
	code, body = get(t, h, "/ring?user=alice")
	if code != http.StatusOK {
		t.Fatalf("ring?user = %d", code)
	}
	info = RingInfo{}
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatal(err)
	}
	want := s.Owners("alice", 0, nil)
	if len(info.Preference) != 3 || info.User != "alice" {
		t.Fatalf("ring?user = %s", body)
	}
	for i := range want {
		if info.Preference[i].Name != want[i].Name {
			t.Errorf("preference[%d] = %s, want %s", i, info.Preference[i].Name, want[i].Name)
		}
	}
	first, _ := s.FirstAlive("alice")
	if info.ServedBy != first.Name || len(info.Route) == 0 {
		t.Errorf("served_by %q route %v", info.ServedBy, info.Route)
	}
	// Without a ring.
	none := newHandler(t, nil)
	if code, body := get(t, none, "/ring?user=x"); code != http.StatusOK || !strings.Contains(body, `"members": []`) {
		t.Errorf("ring without cluster = %d %s", code, body)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, c := range map[string]Config{
		"no name":  {},
		"bad name": {NodeName: "../x"},
		"negative": {NodeName: "n", HealthTimeout: -1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate passed", name)
		}
	}
}
