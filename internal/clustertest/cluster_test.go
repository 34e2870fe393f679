// Package clustertest runs real nfsimap processes as a cluster on
// loopback addresses (127.0.0.1, 127.0.0.2) sharing one spool.
package clustertest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nfsimap/nfsimap/node/demo"
)

// lockedBuffer collects a process's log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type node struct {
	name, ip                        string
	imap, internal, gossip, httpAdr string
	socket                          string
	cmd                             *exec.Cmd
	log                             *lockedBuffer
	exited                          chan error
}

func freePort(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nfsimap")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/nfsimap/nfsimap/node").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func start(t *testing.T, bin, dir, base string, n *node, seeds []string) {
	t.Helper()
	cfg := base + fmt.Sprintf(`
cluster:
  node_name: %s
  internal_addr: %q
  ring_bind: %q
  seeds: [%s]
  secret: "a test secret of some length"
  profile: local
  drain_grace: 1s
http:
  addr: %q
  health_dir: %q
`, n.name, n.internal, n.gossip, strings.Join(seeds, ", "), n.httpAdr, filepath.Join(dir, "health"))
	cfg = strings.Replace(cfg, "imap: \"127.0.0.1:0\"", fmt.Sprintf("imap: %q", n.imap), 1)
	path := filepath.Join(dir, n.name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	n.log = &lockedBuffer{}
	n.cmd = exec.Command(bin, "serve", "-c", path, "--admin.socket="+n.socket)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.exited = make(chan error, 1)
	go func() { n.exited <- n.cmd.Wait() }()
	t.Cleanup(func() {
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(15 * time.Second):
			n.cmd.Process.Kill()
			<-n.exited
		}
		if t.Failed() {
			t.Logf("log of %s:\n%s", n.name, n.log.String())
		}
	})
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type ringInfo struct {
	Ring struct {
		Members []struct{ Name, State string }
	}
	ServedBy string `json:"served_by"`
}

func readTo(t *testing.T, br *bufio.Reader, tag string) string {
	t.Helper()
	var sb strings.Builder
	for {
		l, err := br.ReadString('\n')
		sb.WriteString(l)
		if err != nil {
			t.Fatalf("reading to %s: %v (%q)", tag, err, sb.String())
		}
		if strings.HasPrefix(l, tag+" ") {
			return sb.String()
		}
	}
}

func TestTwoNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	bin := build(t)
	if out, _ := exec.Command(bin, "help").CombinedOutput(); !strings.Contains(string(out), "nfsimap drain") {
		t.Skip("this nfsimap has no cluster wiring yet (node/clusterwire.go)")
	}
	dir := t.TempDir()
	cfgPath, err := demo.Setup(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	nodes := []*node{{name: "n1", ip: "127.0.0.1"}, {name: "n2", ip: "127.0.0.2"}}
	for _, n := range nodes {
		n.imap, n.internal, n.gossip, n.httpAdr = freePort(t, n.ip), freePort(t, n.ip), freePort(t, n.ip), freePort(t, n.ip)
		n.socket = filepath.Join(dir, n.name+".sock")
	}
	start(t, bin, dir, string(base), nodes[0], nil)
	start(t, bin, dir, string(base), nodes[1], []string{nodes[0].gossip})
	for _, n := range nodes {
		waitFor(t, n.name+" sees 2 members", 20*time.Second, func() bool {
			var ri ringInfo
			return getJSON("http://"+n.httpAdr+"/ring", &ri) == nil && len(ri.Ring.Members) == 2
		})
		resp, err := http.Get("http://" + n.httpAdr + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("healthz of %s: %v %v", n.name, resp, err)
		}
		resp.Body.Close()
	}
	var ri ringInfo
	if err := getJSON("http://"+nodes[0].httpAdr+"/ring?user=demo", &ri); err != nil {
		t.Fatal(err)
	}
	owner, other := nodes[0], nodes[1]
	if ri.ServedBy == "n2" {
		owner, other = nodes[1], nodes[0]
	}

	// Log in at the other node: the owner serves the session.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}}
	c, err := d.Dial("tcp", other.imap)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	br.ReadString('\n')
	io.WriteString(c, "a LOGIN demo demo\r\nb SELECT INBOX\r\n")
	if got := readTo(t, br, "a"); !strings.Contains(got, "a OK") {
		t.Fatalf("login: %q", got)
	}
	if got := readTo(t, br, "b"); !strings.Contains(got, "b OK") || !strings.Contains(got, "EXISTS") {
		t.Fatalf("select: %q", got)
	}
	waitFor(t, "the owner logs the client's address", 5*time.Second, func() bool {
		return strings.Contains(owner.log.String(), "remote=127.0.0.9:")
	})
	out, err := exec.Command(bin, "who", "-s", other.socket).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "proxied") || !strings.Contains(string(out), owner.name) {
		t.Errorf("who on the proxying node: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "ring", "-s", other.socket).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "2 member(s)") {
		t.Errorf("ring: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "where", "-s", other.socket, "demo").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "served by "+owner.name) {
		t.Errorf("where: %v\n%s", err, out)
	}

	// The owner lists the session as arriving from a peer, and a kick
	// there ends it with BYE; the client logs in again.
	out, err = exec.Command(bin, "who", "-s", owner.socket).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "internal") || !strings.Contains(string(out), "127.0.0.9:") {
		t.Errorf("who on the owner: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "kick", "-s", owner.socket, "demo").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1 connection(s) ended") {
		t.Errorf("kick: %v\n%s", err, out)
	}
	if rest, _ := io.ReadAll(br); !strings.Contains(string(rest), "* BYE") {
		t.Errorf("after the kick the session got %q", rest)
	}
	c.Close()
	c, err = d.Dial("tcp", other.imap)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br = bufio.NewReader(c)
	br.ReadString('\n')
	io.WriteString(c, "a LOGIN demo demo\r\n")
	if got := readTo(t, br, "a"); !strings.Contains(got, "a OK") {
		t.Fatalf("login after the kick: %q", got)
	}

	// Drain the owner: the session gets BYE, the next login stays at the
	// other node.
	out, err = exec.Command(bin, "drain", "-s", owner.socket).CombinedOutput()
	if err != nil {
		t.Fatalf("drain: %v\n%s", err, out)
	}
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "* BYE") {
		t.Errorf("after the drain the session got %q", rest)
	}
	resp, err := http.Get("http://" + owner.httpAdr + "/readyz")
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz of the drained node: %v %v", resp, err)
	}
	waitFor(t, "the other node sees the owner gone", 10*time.Second, func() bool {
		var ri ringInfo
		return getJSON("http://"+other.httpAdr+"/ring?user=demo", &ri) == nil && ri.ServedBy == other.name
	})
	c2, err := d.Dial("tcp", other.imap)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(30 * time.Second))
	br2 := bufio.NewReader(c2)
	br2.ReadString('\n')
	io.WriteString(c2, "a LOGIN demo demo\r\nb LOGOUT\r\n")
	if got := readTo(t, br2, "a"); !strings.Contains(got, "a OK") {
		t.Fatalf("login after the drain: %q", got)
	}
	readTo(t, br2, "b")
	// The node's log reaches us through a pipe: wait for the line.
	waitFor(t, "the other node to log serving the login itself", 10*time.Second, func() bool {
		return strings.Contains(other.log.String(), "logged in")
	})
}
