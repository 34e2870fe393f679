package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/nfsimap/nfsimap/internal/testcert"
	"github.com/nfsimap/nfsimap/node/config"
	"github.com/nfsimap/nfsimap/node/demo"
	"github.com/nfsimap/nfsimap/node/server"
)

func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, nil)
	return code, out.String(), errb.String()
}

func TestVersionAndExample(t *testing.T) {
	if code, out, _ := runCmd(t, "", "version"); code != 0 || !strings.HasPrefix(out, "nfsimap ") {
		t.Errorf("version: %d %q", code, out)
	}
	code, out, _ := runCmd(t, "", "config", "example")
	if code != 0 || !strings.Contains(out, "trusted_networks:") {
		t.Errorf("config example: %d %q", code, out)
	}
	if code, _, _ := runCmd(t, "", "frobnicate"); code != 2 {
		t.Errorf("unknown command: %d", code)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("listen:\n  imap: \"127.0.0.1:1143\"\n"), 0o600)
	code, out, errs := runCmd(t, "", "config", "check", "-c", good, "--log.level=debug")
	if code != 0 || !strings.Contains(out, "imap: 127.0.0.1:1143") || !strings.Contains(out, "level: debug") {
		t.Errorf("check: %d %q %q", code, out, errs)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen:\n  imap: \":1143\"\nspool:\n  inboxx: /x\n"), 0o600)
	code, _, errs = runCmd(t, "", "config", "check", "-c", bad)
	if code != 1 || !strings.Contains(errs, "inboxx") {
		t.Errorf("unknown key: %d %q", code, errs)
	}
	invalid := filepath.Join(dir, "invalid.yaml")
	os.WriteFile(invalid, []byte("timeouts:\n  idle: 5m\n"), 0o600)
	code, _, errs = runCmd(t, "", "config", "check", "-c", invalid)
	if code != 1 || !strings.Contains(errs, "timeouts.idle") {
		t.Errorf("invalid: %d %q", code, errs)
	}
	if code, _, _ := runCmd(t, "", "config", "check"); code != 1 {
		t.Errorf("check without a file: %d", code)
	}
}

func TestPw(t *testing.T) {
	code, out, errs := runCmd(t, "hunter2\n", "pw")
	if code != 0 || !strings.Contains(out, "$6$") {
		t.Errorf("pw: %d %q %q", code, out, errs)
	}
	code, out, _ = runCmd(t, "", "pw", "-s", "PLAIN", "-p", "x")
	if code != 0 || strings.TrimSpace(out) == "" {
		t.Errorf("pw -p: %d %q", code, out)
	}
}

// TestServeDemo runs a node on a demo spool, logs in with a real client,
// reads the welcome message and stops the node with SIGTERM.
func TestServeDemo(t *testing.T) {
	dir := t.TempDir()
	path, err := demo.Setup(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := startServe(t, cfg, imapAddr)
	addr := n.addr
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(demo.User, demo.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 3 {
		t.Fatalf("%d messages in the demo INBOX, want 3", sel.NumMessages)
	}
	st, err := c.Status("Archive", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || st.NumMessages == nil || *st.NumMessages != 2 {
		t.Fatalf("STATUS Archive: %+v %v, want 2 messages", st, err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Envelope == nil || msgs[0].Envelope.Subject != "Welcome to nfsimap" {
		t.Fatalf("fetched %+v", msgs)
	}
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestServeMetrics runs a node with the HTTP endpoint, logs in (once
// with a wrong password), selects and reads a message, and checks that
// /metrics counts the logins, times the commands and counts the spool
// operations and lock waits.
func TestServeMetrics(t *testing.T) {
	dir := t.TempDir()
	path, err := demo.Setup(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A free loopback port for the HTTP endpoint (serve only reports the
	// IMAP listeners).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTP.Addr = ln.Addr().String()
	ln.Close()
	cfg.Limits.FailDelay = time.Millisecond
	cfg.Limits.FailDelayMax = time.Millisecond
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n := startServe(t, cfg, imapAddr)
	addr := n.addr
	defer func() {
		if err := n.stop(); err != nil {
			t.Error(err)
		}
	}()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(demo.User, "wrong").Wait(); err == nil {
		t.Fatal("login with a wrong password worked")
	}
	if err := c.Login(demo.User, demo.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect(); err != nil {
		t.Fatal(err)
	}

	// The login's result is told just after the hand-off, so poll.
	want := []string{
		`nfsimap_logins_total{result="ok"} 1`,
		`nfsimap_logins_total{result="failed"} 1`,
		`nfsimap_command_duration_seconds_count{command="SELECT"} 1`,
		`nfsimap_command_duration_seconds_count{command="FETCH"} 1`,
		`nfsimap_spool_operations_total{op="sync"} `,
		`nfsimap_spool_operations_total{op="read"} `,
		`nfsimap_lock_wait_seconds_count `,
	}
	url := "http://" + cfg.HTTP.Addr + "/metrics"
	deadline := time.Now().Add(10 * time.Second)
	for {
		body := httpGet(t, url)
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, "\n"+w) {
				missing = w
				break
			}
		}
		if missing == "" {
			if strings.Contains(body, `nfsimap_lock_wait_seconds_count 0`) {
				t.Errorf("no lock wait timed:\n%s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q:\n%s", missing, body)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

// httpGet returns the body of a GET that must answer 200.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// syncWriter serialises writes to a buffer shared with the test.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

// TestSighupReloadsCertificate serves IMAPS, replaces the certificate
// files and sends SIGHUP on the signal channel.
func TestSighupReloadsCertificate(t *testing.T) {
	dir := t.TempDir()
	path, err := demo.Setup(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	testcert.Write(t, certFile, keyFile, "first")
	cfg, err := config.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen.IMAPS = "127.0.0.1:0"
	cfg.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n := startServe(t, cfg, imapsAddr)
	addr := n.addr
	if cn := testcert.PeerCN(t, addr); cn != "first" {
		t.Fatalf("certificate %q", cn)
	}
	testcert.Write(t, certFile, keyFile, "second")
	n.sigs <- syscall.SIGHUP
	deadline := time.Now().Add(10 * time.Second)
	for testcert.PeerCN(t, addr) != "second" {
		if time.Now().After(deadline) {
			t.Fatal("certificate not reloaded after SIGHUP")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
}

// servedNode is a node run by serve in the test's process.
type servedNode struct {
	addr string         // the listener's address the test asked for
	sigs chan os.Signal // signals for serve (SIGHUP, SIGTERM)
	done chan error     // serve's result
	logs *syncWriter
}

func imapAddr(srv *server.Server) net.Addr  { a, _ := srv.Addrs(); return a }
func imapsAddr(srv *server.Server) net.Addr { _, a := srv.Addrs(); return a }

// startServe runs serve on cfg in the background and waits until it
// listens; pick chooses the listener whose address the test gets. The
// node's log is shown when the test fails.
func startServe(t *testing.T, cfg config.Config, pick func(*server.Server) net.Addr) *servedNode {
	t.Helper()
	n := &servedNode{sigs: make(chan os.Signal, 1), done: make(chan error, 1), logs: &syncWriter{w: new(bytes.Buffer)}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(n.logs.String())
		}
	})
	addrc := make(chan string, 1)
	go func() {
		n.done <- serve(context.Background(), cfg, n.logs, n.sigs, func(srv *server.Server) {
			addrc <- pick(srv).String()
		})
	}()
	select {
	case n.addr = <-addrc:
	case err := <-n.done:
		t.Fatalf("serve: %v", err)
	}
	return n
}

// stop sends SIGTERM and returns serve's result.
func (n *servedNode) stop() error {
	n.sigs <- syscall.SIGTERM
	select {
	case err := <-n.done:
		return err
	case <-time.After(20 * time.Second):
		return errors.New("serve did not stop within 20 s")
	}
}
