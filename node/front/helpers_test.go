package front

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/nfsimap/nfsimap/node/auth"
	"github.com/nfsimap/nfsimap/node/sortthread"
)

// testAuth accepts the users of a map.
type testAuth map[string]string

func (a testAuth) Authenticate(_ context.Context, user, password string) (*auth.User, error) {
	if p, ok := a[user]; ok && p == password {
		return &auth.User{Name: user, UID: -1, GID: -1}, nil
	}
	return nil, auth.ErrBadCredentials
}

func (a testAuth) Lookup(_ context.Context, user string) (*auth.User, error) {
	if _, ok := a[user]; ok {
		return &auth.User{Name: user, UID: -1, GID: -1}, nil
	}
	return nil, auth.ErrUnknownUser
}

// panicCatcher is a slog handler that fails the test on any log record
// that reports a panic, and keeps the records for inspection.
type panicCatcher struct {
	t    testing.TB
	mu   *sync.Mutex
	msgs *[]string
	with []slog.Attr
}

func newPanicCatcher(t testing.TB) *panicCatcher {
	return &panicCatcher{t: t, mu: new(sync.Mutex), msgs: new([]string)}
}

func (h *panicCatcher) Enabled(context.Context, slog.Level) bool { return true }
func (h *panicCatcher) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	sb.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
		return true
	})
	for _, a := range h.with {
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
	}
	line := sb.String()
	h.mu.Lock()
	*h.msgs = append(*h.msgs, line)
	h.mu.Unlock()
	if strings.Contains(line, "panic") {
		h.t.Errorf("server panic: %s", line)
	}
	return nil
}
func (h *panicCatcher) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.with = append(append([]slog.Attr(nil), h.with...), as...)
	return &c
}
func (h *panicCatcher) WithGroup(string) slog.Handler { return h }

func (h *panicCatcher) contains(s string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range *h.msgs {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// sortSession adds SORT and THREAD (trivial ones: by UID, descending) and
// an optional APPEND limit to the memory session.
type sortSession struct {
	*imapmemserver.UserSession
	appendLimit uint32
	idling      chan struct{} // gets a value when Idle starts
	selected    bool
}

func (s *sortSession) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	data, err := s.UserSession.Select(name, options)
	s.selected = err == nil
	return data, err
}

func (s *sortSession) Unselect() error {
	s.selected = false
	return s.UserSession.Unselect()
}

var errNotSelected = &imap.Error{Type: imap.StatusResponseTypeNo, Text: "No mailbox selected"}

func (s *sortSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	select {
	case s.idling <- struct{}{}:
	default:
	}
	return s.UserSession.Idle(w, stop)
}

func (s *sortSession) Sort(uid bool, cmd *sortthread.SortCommand) ([]uint32, error) {
	if !s.selected {
		return nil, errNotSelected
	}
	data, err := s.Search(imapserver.NumKindUID, cmd.Criteria, &imap.SearchOptions{ReturnAll: true})
	if err != nil {
		return nil, err
	}
	uids := data.All.(imap.UIDSet)
	nums, _ := uids.Nums()
	out := make([]uint32, 0, len(nums))
	for i := len(nums) - 1; i >= 0; i-- {
		out = append(out, uint32(nums[i]))
	}
	return out, nil
}

func (s *sortSession) Thread(uid bool, cmd *sortthread.ThreadCommand) ([]*sortthread.Node, error) {
	if !s.selected {
		return nil, errNotSelected
	}
	return []*sortthread.Node{{SeqNum: 1, UID: 1, Children: []*sortthread.Node{{SeqNum: 2, UID: 2}}}}, nil
}

// appendLimitSession is a sortSession with an APPEND limit.
type appendLimitSession struct{ *sortSession }

func (s appendLimitSession) AppendLimit() uint32 { return s.appendLimit }

// testEnv is a running front on a loopback listener.
type testEnv struct {
	t     *testing.T
	f     *Front
	addr  string
	tlsLn string // IMAPS address, when started with TLS
	logs  *panicCatcher
	user  *imapmemserver.User
	cert  *tls.Config
	// idling gets a value when a session enters IDLE.
	idling chan struct{}
}

const (
	testUser = "alice"
	testPass = "secret pass"
)

// startEnv starts a front; mod may change the config.
func startEnv(t *testing.T, mod func(*Config)) *testEnv {
	t.Helper()
	env := &testEnv{t: t, logs: newPanicCatcher(t), idling: make(chan struct{}, 1)}
	env.user = imapmemserver.NewUser(testUser, testPass)
	if err := env.user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	env.cert = selfSigned(t)
	cfg := DefaultConfig()
	cfg.Logger = slog.New(env.logs)
	cfg.TLSConfig = env.cert
	cfg.FailDelay = 10 * time.Millisecond
	cfg.FailDelayMax = 80 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	f, err := New(cfg, testAuth{testUser: testPass, "limited": "pw"}, nil, func(_ context.Context, u *auth.User, info ConnInfo) (imapserver.Session, error) {
		s := &sortSession{UserSession: imapmemserver.NewUserSession(env.user), idling: env.idling}
		if u.Name == "limited" {
			s.appendLimit = 1000
			return appendLimitSession{s}, nil
		}
		return s, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	env.f = f
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env.addr = ln.Addr().String()
	env.tlsLn = tln.Addr().String()
	var wg sync.WaitGroup
	serve := func(ln net.Listener, tlsOn bool) {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if tlsOn {
				c = tls.Server(c, env.cert)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.ServeConn(c)
			}()
		}
	}
	wg.Add(2)
	go serve(ln, false)
	go serve(tln, true)
	t.Cleanup(func() {
		if t.Failed() {
			env.logs.mu.Lock()
			for _, m := range *env.logs.msgs {
				t.Log("server log: " + m)
			}
			env.logs.mu.Unlock()
		}
		ln.Close()
		tln.Close()
		f.Close()
		wg.Wait()
	})
	return env
}

// selfSigned makes a TLS config with a fresh self-signed certificate.
func selfSigned(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 64*1024) }

// rawClient speaks IMAP line by line.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func (e *testEnv) dial() *rawClient {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	rc := &rawClient{t: e.t, conn: c, br: newReader(c)}
	rc.expect("* OK [CAPABILITY ")
	return rc
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

// line reads one response line (without CRLF).
func (c *rawClient) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading a response (got %q): %v", l, err)
	}
	return strings.TrimRight(l, "\r\n")
}

// expect reads lines until one starts with prefix and returns it.
func (c *rawClient) expect(prefix string) string {
	c.t.Helper()
	for {
		l := c.line()
		if strings.HasPrefix(l, prefix) {
			return l
		}
		if tag, _, _ := strings.Cut(prefix, " "); tag != "*" && tag != "+" && strings.HasPrefix(l, tag+" ") {
			c.t.Fatalf("want %q, got %q", prefix, l)
		}
	}
}

// login logs in with LOGIN and returns the tagged reply.
func (c *rawClient) login() string {
	c.t.Helper()
	c.send(fmt.Sprintf("L1 LOGIN %s \"%s\"\r\n", testUser, testPass))
	return c.expect("L1 OK")
}
