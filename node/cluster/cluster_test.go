package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nfsimap/nfsimap/node/admin"
	"github.com/nfsimap/nfsimap/node/auth"
	"github.com/nfsimap/nfsimap/node/front"
	"github.com/nfsimap/nfsimap/node/httpapi"
	"github.com/nfsimap/nfsimap/ring"
)

const testSecret = "0123456789abcdef-cluster"

// fixedRing is a Ring with a snapshot the test sets.
type fixedRing struct {
	mu   sync.Mutex
	snap *ring.Snapshot
}

func (r *fixedRing) Snapshot() *ring.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snap
}

func (r *fixedRing) set(t *testing.T, ms ...ring.Member) {
	t.Helper()
	s, err := ring.NewSnapshot(ms)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.snap = s
	r.mu.Unlock()
}

// users is an Authenticator that knows every user with password "pw".
type users struct{}

func (users) Authenticate(_ context.Context, user, password string) (*auth.User, error) {
	if password != "pw" {
		return nil, auth.ErrBadCredentials
	}
	return &auth.User{Name: user, UID: -1, GID: -1}, nil
}

func (users) Lookup(_ context.Context, user string) (*auth.User, error) {
	if strings.HasPrefix(user, "nobody") {
		return nil, auth.ErrUnknownUser
	}
	return &auth.User{Name: user, UID: -1, GID: -1}, nil
}

// logCapture keeps log lines and fails the test on a panic.
type logCapture struct {
	t     testing.TB
	mu    *sync.Mutex
	lines *[]string
	with  []slog.Attr
}

func newLogCapture(t testing.TB) *logCapture {
	return &logCapture{t: t, mu: new(sync.Mutex), lines: new([]string)}
}

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	sb.WriteString(r.Message)
	for _, a := range h.with {
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
		return true
	})
	line := sb.String()
	h.mu.Lock()
	*h.lines = append(*h.lines, line)
	h.mu.Unlock()
	if strings.Contains(line, "panic") {
		h.t.Errorf("panic logged: %s", line)
	}
	return nil
}
func (h *logCapture) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.with = append(append([]slog.Attr(nil), h.with...), as...)
	return &c
}
func (h *logCapture) WithGroup(string) slog.Handler { return h }

func (h *logCapture) find(parts ...string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range *h.lines {
		all := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				all = false
				break
			}
		}
		if all {
			return l, true
		}
	}
	return "", false
}

// peerNode is a real front serving an internal listener, like a peer's.
type peerNode struct {
	name  string
	addr  string
	logs  *logCapture
	infos chan front.ConnInfo
	ln    net.Listener
	front *front.Front
	cl    *Cluster
}

// startPeer runs node name's internal listener on ip with the ring r.
func startPeer(t *testing.T, name, ip string, r Ring, secret string, serverTLS *tls.Config) *peerNode {
	t.Helper()
	return startPeerListen(t, name, ip+":0", r, secret, serverTLS)
}

// startPeerOn runs node name's internal listener on addr.
func startPeerOn(t *testing.T, name, addr string, r Ring) *peerNode {
	t.Helper()
	return startPeerListen(t, name, addr, r, testSecret, nil)
}

func startPeerListen(t *testing.T, name, addr string, r Ring, secret string, serverTLS *tls.Config) *peerNode {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &peerNode{name: name, addr: ln.Addr().String(), logs: newLogCapture(t), infos: make(chan front.ConnInfo, 16), ln: ln}
	cfg := DefaultConfig()
	cfg.NodeName, cfg.InternalAddr, cfg.Secret = name, p.addr, secret
	cfg.ServerTLS = serverTLS
	cfg.Logger = slog.New(p.logs).With("node", name)
	cl, err := New(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	p.cl = cl
	mem := map[string]*imapmemserver.User{}
	var memMu sync.Mutex
	fcfg := front.DefaultConfig()
	fcfg.Logger = slog.New(p.logs).With("node", name)
	fcfg.TrustedNets = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	fcfg.FailDelay, fcfg.FailDelayMax = time.Millisecond, time.Millisecond
	f, err := front.New(fcfg, cl.InternalAuthenticator(users{}), front.LocalRouter{}, func(_ context.Context, u *auth.User, info front.ConnInfo) (imapserver.Session, error) {
		p.infos <- info
		memMu.Lock()
		defer memMu.Unlock()
		mu := mem[u.Name]
		if mu == nil {
			mu = imapmemserver.NewUser(u.Name, "")
			if err := mu.Create("INBOX", nil); err != nil {
				return nil, err
			}
			mem[u.Name] = mu
		}
		return imapmemserver.NewUserSession(mu), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	p.front = f
	served := make(chan error, 1)
	go func() { served <- cl.ServeInternal(ln, f) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-served; err != nil {
			t.Errorf("ServeInternal: %v", err)
		}
		f.Close()
	})
	return p
}

// deadAddr returns an address on ip where nothing listens.
func deadAddr(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentAddr returns an address on ip that accepts connections and never
// answers.
func silentAddr(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// userWithOrder finds a user name whose preference list over s is names.
func userWithOrder(t *testing.T, s *ring.Snapshot, names ...string) string {
	t.Helper()
	for i := range 100000 {
		u := "user" + strconv.Itoa(i)
		list := s.Owners(u, 0, nil)
		ok := len(list) == len(names)
		for j := range list {
			if ok && list[j].Name != names[j] {
				ok = false
			}
		}
		if ok {
			return u
		}
	}
	t.Fatalf("no user with preference list %v", names)
	return ""
}

// entry plays the client-facing node's front around Proxy: it accepts one
// client, greets, reads a login command (LOGIN, AUTHENTICATE PLAIN with or
// without an initial response, AUTHENTICATE LOGIN) without checking it,
// and hands the connection to Proxy with whatever the client pipelined
// behind it. It reports Proxy's result.
type entry struct {
	addr string
	done chan proxyResult
}

type proxyResult struct {
	taken bool
	err   error
	tag   string
}

func startEntry(t *testing.T, cl *Cluster, user string) *entry {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	e := &entry{addr: ln.Addr().String(), done: make(chan proxyResult, 1)}
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		br := bufio.NewReader(conn)
		io.WriteString(conn, "* OK test entry ready\r\n")
		line, err := br.ReadString('\n')
		if err != nil {
			conn.Close()
			e.done <- proxyResult{err: err}
			return
		}
		f := strings.Fields(line)
		tag := f[0]
		if len(f) == 3 && strings.EqualFold(f[1], "AUTHENTICATE") {
			// PLAIN without an initial response, or LOGIN: one or two
			// continuation rounds.
			rounds := 1
			if strings.EqualFold(f[2], "LOGIN") {
				rounds = 2
			}
			for range rounds {
				io.WriteString(conn, "+ \r\n")
				if _, err := br.ReadString('\n'); err != nil {
					conn.Close()
					e.done <- proxyResult{err: err}
					return
				}
			}
		}
		info := front.ConnInfo{ID: "c1", Remote: conn.RemoteAddr(), Local: conn.LocalAddr(), ClientID: map[string]string{"name": "TestMail", "x-originating-ip": "6.6.6.6"}}
		taken, err := cl.Proxy(context.Background(), conn, br, &auth.User{Name: user}, info, tag)
		if !taken {
			io.WriteString(conn, tag+" OK [CAPABILITY IMAP4rev1] served locally\r\n")
			conn.Close()
		}
		e.done <- proxyResult{taken, err, tag}
	}()
	return e
}

// dialFrom connects to addr from source IP ip.
func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

// readTo reads responses up to and including the line tagged tag, with any
// literals, and returns them as on the wire.
func readTo(t *testing.T, br *bufio.Reader, tag string) string {
	t.Helper()
	var out bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		out.WriteString(line)
		if err != nil {
			t.Fatalf("reading to %s: %v (got %q)", tag, err, tail(out.String()))
		}
		if strings.HasSuffix(line, "}\r\n") {
			i := strings.LastIndexByte(line, '{')
			n, err := strconv.Atoi(strings.TrimSuffix(line[i+1:len(line)-3], "+"))
			if err == nil {
				if _, err := io.CopyN(&out, br, int64(n)); err != nil {
					t.Fatal(err)
				}
				continue
			}
		}
		if strings.HasPrefix(line, tag+" ") {
			return out.String()
		}
	}
}

func tail(s string) string {
	if len(s) > 300 {
		return "..." + s[len(s)-300:]
	}
	return s
}

// node addresses used by the tests.
const (
	ipA      = "127.0.0.1" // the client-facing node
	ipB      = "127.0.0.2" // a peer
	ipC      = "127.0.0.3" // another peer, often down
	ipClient = "127.0.0.9"
)

func newCluster(t *testing.T, name, internal string, r Ring, mod func(*Config)) *Cluster {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeName, cfg.InternalAddr, cfg.Secret = name, internal, testSecret
	cfg.DialTimeout = time.Second
	cfg.Logger = slog.New(newLogCapture(t)).With("node", name)
	if mod != nil {
		mod(&cfg)
	}
	cl, err := New(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestProxyLogins(t *testing.T) {
	r := &fixedRing{}
	b := startPeer(t, "b", ipB, r, testSecret, nil)
	aAddr := deadAddr(t, ipA)
	r.set(t, ring.Member{Name: "a", Addr: aAddr, State: ring.StateAlive}, ring.Member{Name: "b", Addr: b.addr, State: ring.StateAlive})
	user := userWithOrder(t, r.Snapshot(), "b", "a")
	reg := prometheus.NewRegistry()
	metrics, err := httpapi.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	registry := admin.NewRegistry()
	a := newCluster(t, "a", aAddr, r, func(c *Config) { c.Metrics = metrics; c.Registry = registry })

	if d, err := a.Route(context.Background(), &auth.User{Name: user}, front.ConnInfo{}); err != nil || d.Local || d.Peer != "b" {
		t.Fatalf("Route = %+v, %v; want peer b", d, err)
	}

	plainIR := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00pw"))
	for _, tc := range []struct {
		name  string
		login []string // lines the client sends; after the first, each answers a "+"
	}{
		{"LOGIN", []string{"a1 LOGIN " + user + " pw"}},
		{"AUTHENTICATE PLAIN SASL-IR", []string{"x.2 AUTHENTICATE PLAIN " + plainIR}},
		{"AUTHENTICATE PLAIN", []string{"tag3 AUTHENTICATE PLAIN", plainIR}},
		{"AUTHENTICATE LOGIN", []string{"T4 AUTHENTICATE LOGIN", base64.StdEncoding.EncodeToString([]byte(user)), base64.StdEncoding.EncodeToString([]byte("pw"))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEntry(t, a, user)
			c := dialFrom(t, ipClient, e.addr)
			br := bufio.NewReader(c)
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
			tag := strings.Fields(tc.login[0])[0]
			// The first line and a pipelined NOOP go together: the NOOP
			// sits in the entry's buffer when Proxy starts.
			first := tc.login[0] + "\r\n"
			if len(tc.login) == 1 {
				first += "n1 NOOP\r\n"
			}
			io.WriteString(c, first)
			for i, l := range tc.login[1:] {
				cont, err := br.ReadString('\n')
				if err != nil || !strings.HasPrefix(cont, "+") {
					t.Fatalf("continuation: %q, %v", cont, err)
				}
				l += "\r\n"
				if i == len(tc.login)-2 {
					l += "n1 NOOP\r\n"
				}
				io.WriteString(c, l)
			}
			got := readTo(t, br, tag)
			if !strings.HasPrefix(got, tag+" OK [CAPABILITY ") || !strings.Contains(got, "Logged in") {
				t.Fatalf("login reply %q: want the peer's tagged OK under the client's tag", got)
			}
			if got := readTo(t, br, "n1"); !strings.HasPrefix(got, "n1 OK") {
				t.Fatalf("pipelined NOOP: %q", got)
			}
			// The peer's session saw the client's address and ID.
			var info front.ConnInfo
			select {
			case info = <-b.infos:
			case <-time.After(10 * time.Second):
				t.Fatal("the peer made no session")
			}
			if got, want := info.Remote.String(), c.LocalAddr().String(); got != want {
				t.Errorf("peer's ConnInfo.Remote = %s, want the client's %s", got, want)
			}
			if info.ClientID["x-originating-ip"] != ipClient || info.ClientID["name"] != "TestMail" ||
				info.ClientID["x-originating-port"] != strconv.Itoa(c.LocalAddr().(*net.TCPAddr).Port) || info.ClientID["x-session-id"] != "c1" {
				t.Errorf("peer's ClientID = %v", info.ClientID)
			}
			if l, ok := b.logs.find("logged in", "user="+user, "remote="+c.LocalAddr().String()); !ok {
				t.Errorf("the peer's log has no login with the client's address")
			} else {
				t.Log(l)
			}
			if n := registry.Len(); n != 1 {
				t.Errorf("registry holds %d connections during the relay, want 1", n)
			}
			io.WriteString(c, "z LOGOUT\r\n")
			if got := readTo(t, br, "z"); !strings.Contains(got, "* BYE") {
				t.Errorf("LOGOUT: %q", got)
			}
			res := <-e.done
			if !res.taken || res.err != nil {
				t.Errorf("Proxy = %v, %v; want taken, nil", res.taken, res.err)
			}
			if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
				t.Errorf("after LOGOUT the client connection is not closed: %v", err)
			}
		})
	}
	if got := metricValue(t, metrics.ProxiedConns.WithLabelValues("b", "ok")); got != 4 {
		t.Errorf("proxied ok count %v, want 4", got)
	}
	if got := metricValue(t, metrics.Connections.WithLabelValues(httpapi.ConnProxied)); got != 0 {
		t.Errorf("proxied connections gauge %v after all ended, want 0", got)
	}
	if n := registry.Len(); n != 0 {
		t.Errorf("registry holds %d connections after all ended", n)
	}
}

// TestProxyByteExact sends a 1 MiB APPEND literal through the relay and
// fetches it back.
func TestProxyByteExact(t *testing.T) {
	r := &fixedRing{}
	b := startPeer(t, "b", ipB, r, testSecret, nil)
	aAddr := deadAddr(t, ipA)
	r.set(t, ring.Member{Name: "a", Addr: aAddr, State: ring.StateAlive}, ring.Member{Name: "b", Addr: b.addr, State: ring.StateAlive})
	user := userWithOrder(t, r.Snapshot(), "b", "a")
	a := newCluster(t, "a", aAddr, r, nil)
	e := startEntry(t, a, user)
	c := dialFrom(t, ipClient, e.addr)
	br := bufio.NewReader(c)
	br.ReadString('\n')
	io.WriteString(c, "a LOGIN "+user+" pw\r\n")
	readTo(t, br, "a")

	msg := make([]byte, 0, 1<<20)
	msg = append(msg, "From: a@example.org\r\nSubject: big\r\n\r\n"...)
	for i := 0; len(msg) < 1<<20-100; i++ {
		msg = fmt.Appendf(msg, "line %d %x\r\n", i, i*7919)
	}
	for len(msg) < 1<<20 {
		msg = append(msg, 'x')
	}
	go func() {
		// Written while the reader below waits, so both directions move
		// at once.
		fmt.Fprintf(c, "b APPEND INBOX {%d+}\r\n", len(msg))
		c.Write(msg)
		io.WriteString(c, "\r\nc SELECT INBOX\r\nd FETCH 1 BODY.PEEK[]\r\ne LOGOUT\r\n")
	}()
	if got := readTo(t, br, "b"); !strings.HasPrefix(got, "b OK") {
		t.Fatalf("APPEND: %q", tail(got))
	}
	readTo(t, br, "c")
	got := readTo(t, br, "d")
	want := fmt.Sprintf("BODY[] {%d}\r\n", len(msg))
	i := strings.Index(got, want)
	if i < 0 || !strings.HasPrefix(got, "* 1 FETCH (") {
		t.Fatalf("FETCH: %.200q", got)
	}
	body := got[i+len(want):][:len(msg)]
	if body != string(msg) {
		t.Fatal("the message came back different")
	}
	readTo(t, br, "e")
	if res := <-e.done; !res.taken || res.err != nil {
		t.Errorf("Proxy = %v, %v", res.taken, res.err)
	}
}

// TestProxyFallback: a peer that is down or silent is skipped for the
// next one; with none left the user is served locally.
func TestProxyFallback(t *testing.T) {
	r := &fixedRing{}
	b := startPeer(t, "b", ipB, r, testSecret, nil)
	aAddr := deadAddr(t, ipA)
	base := []ring.Member{{Name: "a", Addr: aAddr, State: ring.StateAlive}, {Name: "b", Addr: b.addr, State: ring.StateAlive}, {Name: "c", State: ring.StateAlive}}
	r.set(t, base...)
	user := userWithOrder(t, r.Snapshot(), "c", "b", "a")

	reg := prometheus.NewRegistry()
	metrics, _ := httpapi.NewMetrics(reg)
	a := newCluster(t, "a", aAddr, r, func(c *Config) { c.DialTimeout = 300 * time.Millisecond; c.Metrics = metrics })
	login := func(t *testing.T) (string, proxyResult) {
		e := startEntry(t, a, user)
		c := dialFrom(t, ipClient, e.addr)
		br := bufio.NewReader(c)
		br.ReadString('\n')
		io.WriteString(c, "a LOGIN "+user+" pw\r\n")
		got := readTo(t, br, "a")
		c.Close()
		return got, <-e.done
	}
	for _, tc := range []struct {
		name  string
		cAddr string
	}{
		{"refused", deadAddr(t, ipC)},
		{"silent", silentAddr(t, ipC)},
	} {
		t.Run(tc.name+" then next peer", func(t *testing.T) {
			ms := append([]ring.Member(nil), base...)
			ms[2].Addr = tc.cAddr
			r.set(t, ms...)
			start := time.Now()
			got, res := login(t)
			if !strings.Contains(got, "Logged in") || !res.taken {
				t.Fatalf("reply %q, taken %v err %v: want the login at b", got, res.taken, res.err)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("took %v", took)
			}
			<-b.infos
		})
	}
	t.Run("all down then local", func(t *testing.T) {
		ms := append([]ring.Member(nil), base...)
		ms[1].Addr = deadAddr(t, ipB)
		ms[2].Addr = silentAddr(t, ipC)
		r.set(t, ms...)
		got, res := login(t)
		if res.taken || !errors.Is(res.err, ErrNoPeer) || !strings.Contains(got, "served locally") {
			t.Fatalf("reply %q, taken %v err %v: want served locally", got, res.taken, res.err)
		}
	})
	t.Run("wrong secret then local", func(t *testing.T) {
		r.set(t, base[0], base[1])
		user := userWithOrder(t, r.Snapshot(), "b", "a")
		bad := newCluster(t, "a", aAddr, r, func(c *Config) { c.Secret = "another secret of enough length" })
		e := startEntry(t, bad, user)
		c := dialFrom(t, ipClient, e.addr)
		br := bufio.NewReader(c)
		br.ReadString('\n')
		io.WriteString(c, "a LOGIN "+user+" pw\r\n")
		got := readTo(t, br, "a")
		res := <-e.done
		if res.taken || !strings.Contains(got, "served locally") {
			t.Fatalf("reply %q, taken %v err %v", got, res.taken, res.err)
		}
		if _, ok := b.logs.find("wrong cluster credential"); !ok {
			t.Error("the peer did not log the wrong credential")
		}
	})
	t.Run("local when first", func(t *testing.T) {
		r.set(t, base...)
		user := userWithOrder(t, r.Snapshot(), "a", "b", "c")
		taken, err := a.Proxy(context.Background(), nil, nil, &auth.User{Name: user}, front.ConnInfo{}, "x")
		if taken || err != nil {
			t.Fatalf("Proxy = %v, %v; want local", taken, err)
		}
	})
	if got := metricValue(t, metrics.ProxiedConns.WithLabelValues("c", "failed")); got < 2 {
		t.Errorf("failed proxy count for c = %v", got)
	}
}

// TestInternalRefusesStrangers: only ring members' addresses may use the
// internal listener.
func TestInternalRefusesStrangers(t *testing.T) {
	r := &fixedRing{}
	b := startPeer(t, "b", ipB, r, testSecret, nil)
	r.set(t, ring.Member{Name: "a", Addr: "127.0.0.1:1", State: ring.StateAlive}, ring.Member{Name: "b", Addr: b.addr, State: ring.StateAlive, Gossip: "127.0.0.4:7946"})
	c := dialFrom(t, "127.0.0.5", b.addr)
	got, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(got), "* BYE [UNAVAILABLE]") {
		t.Fatalf("stranger got %q, %v", got, err)
	}
	if _, ok := b.logs.find("not a ring member", "127.0.0.5"); !ok {
		t.Error("refusal not logged")
	}
	// A member (by gossip address) without a PROXY line is dropped.
	c = dialFrom(t, "127.0.0.4", b.addr)
	io.WriteString(c, "a LOGIN x y\r\n")
	got, _ = io.ReadAll(c)
	if len(got) != 0 {
		t.Fatalf("member without PROXY line got %q", got)
	}
	// A member's PROXY line is read and the front greets.
	c = dialFrom(t, ipA, b.addr)
	io.WriteString(c, "PROXY TCP4 192.0.2.1 127.0.0.2 5555 143\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "* OK") {
		t.Fatalf("member got %q, %v", line, err)
	}
	// The user's own password does not work on the internal listener.
	io.WriteString(c, "a LOGIN someone pw\r\n")
	br := bufio.NewReader(c)
	if got := readTo(t, br, "a"); !strings.HasPrefix(got, "a NO") {
		t.Fatalf("user password on the internal listener: %q", got)
	}
}

// TestProxyTLS runs the relay with TLS between the nodes.
func TestProxyTLS(t *testing.T) {
	srv, cli := tlsPair(t)
	r := &fixedRing{}
	b := startPeer(t, "b", ipB, r, testSecret, srv)
	aAddr := deadAddr(t, ipA)
	r.set(t, ring.Member{Name: "a", Addr: aAddr, State: ring.StateAlive}, ring.Member{Name: "b", Addr: b.addr, State: ring.StateAlive})
	user := userWithOrder(t, r.Snapshot(), "b", "a")
	a := newCluster(t, "a", aAddr, r, func(c *Config) { c.ClientTLS = cli })
	e := startEntry(t, a, user)
	c := dialFrom(t, ipClient, e.addr)
	br := bufio.NewReader(c)
	br.ReadString('\n')
	io.WriteString(c, "a LOGIN "+user+" pw\r\nb LOGOUT\r\n")
	if got := readTo(t, br, "a"); !strings.Contains(got, "Logged in") {
		t.Fatalf("login: %q", got)
	}
	readTo(t, br, "b")
	if res := <-e.done; !res.taken || res.err != nil {
		t.Errorf("Proxy = %v, %v", res.taken, res.err)
	}
	info := <-b.infos
	if !info.TLS || info.Remote.String() != c.LocalAddr().String() {
		t.Errorf("peer's info: TLS %v remote %v", info.TLS, info.Remote)
	}
}

// tlsPair makes a server config with a self-signed certificate for
// 127.0.0.2 and a client config trusting it.
func tlsPair(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "nfsimap test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP(ipB)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.NodeName, good.InternalAddr, good.Secret = "a", "10.0.0.1:1144", testSecret
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"no name":      func(c *Config) { c.NodeName = "" },
		"bad addr":     func(c *Config) { c.InternalAddr = "10.0.0.1" },
		"short secret": func(c *Config) { c.Secret = "short" },
		"bad source":   func(c *Config) { c.SourceIP = "host" },
		"negative":     func(c *Config) { c.DialTimeout = -1 },
	} {
		c := good
		mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Validate = %v", name, err)
		}
	}
}

func TestIDArgsAndProxyLine(t *testing.T) {
	info := front.ConnInfo{
		ID:       "c7",
		Remote:   &net.TCPAddr{IP: net.ParseIP("192.0.2.5"), Port: 40000},
		Local:    &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 143},
		ClientID: map[string]string{"name": "Mail \"app\"\r\n", "x-originating-ip": "1.1.1.1"},
	}
	got := string(idArgs(info))
	want := `("x-connected-ip" "10.0.0.1" "x-connected-port" "143" "x-originating-ip" "192.0.2.5" "x-originating-port" "40000" "x-session-id" "c7" "name" "Mail \"app\"")`
	if got != want {
		t.Errorf("idArgs =\n%s\nwant\n%s", got, want)
	}
	if got := string(proxyLine(info.Remote, info.Local)); got != "PROXY TCP4 192.0.2.5 10.0.0.1 40000 143\r\n" {
		t.Errorf("proxyLine = %q", got)
	}
	v6 := &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1}
	if got := string(proxyLine(v6, info.Local)); got != "PROXY UNKNOWN\r\n" {
		t.Errorf("mixed families: %q", got)
	}
	if got := string(proxyLine(v6, v6)); got != "PROXY TCP6 2001:db8::1 2001:db8::1 1 1\r\n" {
		t.Errorf("v6: %q", got)
	}
}

// metricValue reads a counter's or gauge's value.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatal("not a counter or gauge")
	return 0
}

// TestRingChangeKeepsSessions: a relayed session survives a ring change;
// the next login follows the new ring; a kick ends the relay.
func TestRingChangeKeepsSessions(t *testing.T) {
	r := &fixedRing{}
	b := startPeer(t, "b", ipB, r, testSecret, nil)
	aAddr := deadAddr(t, ipA)
	members := []ring.Member{{Name: "a", Addr: aAddr, State: ring.StateAlive}, {Name: "b", Addr: b.addr, State: ring.StateAlive}}
	r.set(t, members...)
	user := userWithOrder(t, r.Snapshot(), "b", "a")
	registry := admin.NewRegistry()
	a := newCluster(t, "a", aAddr, r, func(c *Config) { c.Registry = registry })

	e := startEntry(t, a, user)
	c := dialFrom(t, ipClient, e.addr)
	br := bufio.NewReader(c)
	br.ReadString('\n')
	io.WriteString(c, "a LOGIN "+user+" pw\r\n")
	if got := readTo(t, br, "a"); !strings.Contains(got, "Logged in") {
		t.Fatalf("login: %q", got)
	}
	<-b.infos

	// b drains: the session stays, a new login is served locally.
	members[1].State = ring.StateDraining
	r.set(t, members...)
	io.WriteString(c, "n NOOP\r\n")
	if got := readTo(t, br, "n"); !strings.HasPrefix(got, "n OK") {
		t.Fatalf("NOOP after the ring change: %q", got)
	}
	e2 := startEntry(t, a, user)
	c2 := dialFrom(t, ipClient, e2.addr)
	br2 := bufio.NewReader(c2)
	br2.ReadString('\n')
	io.WriteString(c2, "a LOGIN "+user+" pw\r\n")
	if got := readTo(t, br2, "a"); !strings.Contains(got, "served locally") {
		t.Fatalf("new login after b drains: %q", got)
	}
	if res := <-e2.done; res.taken {
		t.Error("new login was proxied to a draining node")
	}

	if n := registry.Kick(user); n != 1 {
		t.Fatalf("kicked %d", n)
	}
	if _, err := io.ReadAll(br); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Logf("after kick: %v", err)
	}
	if res := <-e.done; !res.taken {
		t.Errorf("Proxy = %v, %v", res.taken, res.err)
	}
}

// TestWithRealRing proxies between two nodes that met by gossip: the
// members' addresses come from their ring metadata.
func TestWithRealRing(t *testing.T) {
	start := func(name, ip, internal string, seeds []string) *ring.Ring {
		cfg := ring.DefaultConfig()
		cfg.NodeName, cfg.InternalAddr = name, internal
		cfg.BindAddr, cfg.BindPort = ip, 0
		cfg.Profile = ring.ProfileLocal
		cfg.RejoinInterval = 0
		cfg.Seeds = seeds
		rg, err := ring.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rg.Close() })
		return rg
	}
	// b's internal listener address must be known before its ring starts.
	bLn, err := net.Listen("tcp", ipB+":0")
	if err != nil {
		t.Fatal(err)
	}
	bAddr := bLn.Addr().String()
	bLn.Close()
	aAddr := deadAddr(t, ipA)
	ra := start("a", ipA, aAddr, nil)
	rb := start("b", ipB, bAddr, []string{ra.GossipAddr()})
	if err := rb.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for ra.Snapshot().Len() != 2 || rb.Snapshot().Len() != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the nodes did not meet")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// b's internal listener on the address it published.
	ln, err := net.Listen("tcp", bAddr)
	if err != nil {
		t.Skipf("port %s was taken meanwhile: %v", bAddr, err)
	}
	ln.Close()
	p := startPeerOn(t, "b", bAddr, rb)
	user := userWithOrder(t, ra.Snapshot(), "b", "a")
	a := newCluster(t, "a", aAddr, ra, nil)
	e := startEntry(t, a, user)
	c := dialFrom(t, ipClient, e.addr)
	br := bufio.NewReader(c)
	br.ReadString('\n')
	io.WriteString(c, "a LOGIN "+user+" pw\r\nb LOGOUT\r\n")
	if got := readTo(t, br, "a"); !strings.Contains(got, "Logged in") {
		t.Fatalf("login: %q", got)
	}
	readTo(t, br, "b")
	if res := <-e.done; !res.taken || res.err != nil {
		t.Errorf("Proxy = %v, %v", res.taken, res.err)
	}
	<-p.infos
}

func TestGossipKey(t *testing.T) {
	k := GossipKey(testSecret)
	cfg := ring.DefaultConfig()
	cfg.InternalAddr = "127.0.0.1:1"
	cfg.SecretKey = k
	if err := cfg.Validate(); err != nil {
		t.Fatalf("derived key not accepted by the ring: %v", err)
	}
	if k == GossipKey(testSecret+"x") || k != GossipKey(testSecret) {
		t.Error("derivation not a function of the secret")
	}
}
