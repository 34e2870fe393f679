package clustertest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nfsimap/nfsimap/node/auth"
	"github.com/nfsimap/nfsimap/node/demo"
)

// password is every test user's password.
const password = "secret"

// harness is a cluster of nfsimap processes sharing one spool and one
// passwd-file. Its processes are stopped in t.Cleanup; a node can be
// killed and started again.
type harness struct {
	t     *testing.T
	bin   string
	dir   string
	base  string // the configuration without the cluster and http sections
	users []string
	nodes []*proc

	probed bool // whether rejoin was found out
	rejoin bool // the binary knows cluster.rejoin_interval
}

// proc is one node of a harness.
type proc struct {
	name, ip                        string
	imap, internal, gossip, httpAdr string
	socket                          string
	netns                           string // "" = this network namespace

	mu     sync.Mutex
	cmd    *exec.Cmd
	log    *lockedBuffer
	logs   []string // the logs of earlier runs
	exited chan error
}

// Log returns everything the node wrote, over all its runs.
func (p *proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := strings.Join(p.logs, "")
	if p.log != nil {
		s += p.log.String()
	}
	return s
}

var buildOnce struct {
	sync.Once
	bin string
	err error
}

// binary builds nfsimap once for the package.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		// NFSIMAP_BIN names a binary built beforehand (e.g. of another
		// tree); by default this tree's is built.
		if bin := os.Getenv("NFSIMAP_BIN"); bin != "" {
			buildOnce.bin = bin
			return
		}
		dir, err := os.MkdirTemp("", "nfsimap-clustertest-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.bin = filepath.Join(dir, "nfsimap")
		out, err := exec.Command("go", "build", "-o", buildOnce.bin, "github.com/nfsimap/nfsimap/node").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("build: %w\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	if out, _ := exec.Command(buildOnce.bin, "help").CombinedOutput(); !strings.Contains(string(out), "nfsimap drain") {
		t.Skip("this nfsimap has no cluster wiring yet (node/clusterwire.go)")
	}
	return buildOnce.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildOnce.bin != "" && os.Getenv("NFSIMAP_BIN") == "" {
		os.RemoveAll(filepath.Dir(buildOnce.bin))
	}
	os.Exit(code)
}

// newHarness prepares the spool, a passwd-file with nUsers users (u0,
// u1, ...) and n nodes named n1, n2, ... on the addresses ips[i] (ports
// picked free here), without starting them.
func newHarness(t *testing.T, ips []string, nUsers int) *harness {
	t.Helper()
	h := newSpool(t, nUsers)
	for i, ip := range ips {
		p := &proc{name: fmt.Sprintf("n%d", i+1), ip: ip}
		p.imap, p.internal, p.gossip, p.httpAdr = freePort(t, ip), freePort(t, ip), freePort(t, ip), freePort(t, ip)
		p.socket = filepath.Join(h.dir, p.name+".sock")
		h.nodes = append(h.nodes, p)
	}
	return h
}

// newSpool prepares the spool and the passwd-file of a harness without
// nodes.
func newSpool(t *testing.T, nUsers int) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	h := &harness{t: t, bin: binary(t), dir: t.TempDir()}
	cfgPath, err := demo.Setup(h.dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// Clients inside the partition test's namespaces come from the
	// benchmarking range.
	h.base = strings.Replace(string(base), `trusted_networks: [127.0.0.0/8, "::1/128"]`, `trusted_networks: [127.0.0.0/8, "::1/128", 198.18.0.0/15]`, 1)
	if h.base == string(base) {
		t.Fatalf("the demo configuration changed; trusted_networks not found in:\n%s", base)
	}
	// One hash for all: SHA512-CRYPT is slow on purpose.
	hash, err := auth.Hash("SHA512-CRYPT", password, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var pw strings.Builder
	for i := range nUsers {
		u := fmt.Sprintf("u%d", i)
		h.users = append(h.users, u)
		home := filepath.Join(h.dir, "spool", u)
		if err := os.MkdirAll(home, 0o700); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&pw, "%s:%s:::test user:%s::\n", u, hash, home)
	}
	if err := os.WriteFile(filepath.Join(h.dir, "passwd"), []byte(pw.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return h
}

// startAll starts every node, the first as the seed, and waits until all
// of them see all.
func (h *harness) startAll() {
	h.t.Helper()
	for i, p := range h.nodes {
		var seeds []string
		if i > 0 {
			seeds = []string{h.nodes[0].gossip}
		}
		h.start(p, seeds)
	}
	h.waitMembers(h.nodes, len(h.nodes), 30*time.Second)
}

// start starts node p with the given gossip seeds.
func (h *harness) start(p *proc, seeds []string) {
	t := h.t
	t.Helper()
	quoted := make([]string, len(seeds))
	for i, s := range seeds {
		quoted[i] = fmt.Sprintf("%q", s)
	}
	write := func(extra string) string {
		cfg := h.base + fmt.Sprintf(`
cluster:
  node_name: %s
  internal_addr: %q
  ring_bind: %q
  seeds: [%s]
  secret: "a test secret of some length"
  profile: local
  drain_grace: 1s
  dial_timeout: 1s
%shttp:
  addr: %q
  health_dir: %q
`, p.name, p.internal, p.gossip, strings.Join(quoted, ", "), extra, p.httpAdr, filepath.Join(h.dir, "health"))
		cfg = strings.Replace(cfg, "imap: \"127.0.0.1:0\"", fmt.Sprintf("imap: %q", p.imap), 1)
		cfg = strings.Replace(cfg, "level: info", "level: debug", 1)
		path := filepath.Join(h.dir, p.name+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// cluster.rejoin_interval lets the halves of a healed partition
	// merge; older binaries reject the key.
	const rejoin = "  rejoin_interval: 2s\n"
	if !h.probed {
		h.probed = true
		h.rejoin = exec.Command(h.bin, "config", "check", "-c", write(rejoin)).Run() == nil
	}
	path := write("")
	if h.rejoin {
		path = write(rejoin)
	}
	args := []string{h.bin, "serve", "-c", path, "--admin.socket=" + p.socket}
	if p.netns != "" {
		args = append([]string{"ip", "netns", "exec", p.netns}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	log := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	p.mu.Lock()
	if p.log != nil {
		p.logs = append(p.logs, p.log.String())
	}
	p.cmd, p.log, p.exited = cmd, log, exited
	p.mu.Unlock()
	t.Cleanup(func() {
		began := time.Now()
		defer func() {
			if took := time.Since(began); took > 5*time.Second {
				t.Logf("%s took %v to stop; its log ends:\n%s", p.name, took.Round(time.Millisecond), tail(log.String(), 12))
			}
		}()
		select {
		case <-exited:
			exited <- nil // for kill, which may wait too
		default:
			// SIGTERM, then SIGKILL if the node has not left within
			// 15 s (TestStopAllAtOnce checks they all leave promptly).
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
			exited <- nil
		}
		if t.Failed() {
			t.Logf("log of %s (pid %d):\n%s", p.name, cmd.Process.Pid, log.String())
		}
	})
}

// kill ends node p's process with SIGKILL and waits for it.
func (h *harness) kill(p *proc) {
	h.t.Helper()
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		h.t.Fatalf("kill %s: %v", p.name, err)
	}
	err := <-exited
	exited <- err
}

// members returns the names of the members p's /ring lists (nil on an
// error).
func (h *harness) members(p *proc) ([]string, error) {
	var ri ringInfo
	if err := h.getJSON(p, "/ring", &ri); err != nil {
		return nil, err
	}
	var names []string
	for _, m := range ri.Ring.Members {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	return names, nil
}

// waitMembers waits until each of nodes lists want members.
func (h *harness) waitMembers(nodes []*proc, want int, d time.Duration) {
	h.t.Helper()
	for _, p := range nodes {
		waitFor(h.t, fmt.Sprintf("%s to see %d members", p.name, want), d, func() bool {
			m, err := h.members(p)
			return err == nil && len(m) == want
		})
	}
}

// userRing is /ring?user= of one node.
type userRing struct {
	ServedBy   string `json:"served_by"`
	Preference []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"preference"`
}

// where asks node p which node serves user, and the preference list.
func (h *harness) where(p *proc, user string) (userRing, error) {
	var ur userRing
	err := h.getJSON(p, "/ring?user="+user, &ur)
	return ur, err
}

func (h *harness) getJSON(p *proc, path string, v any) error {
	return getJSONVia(h.httpClient(p), "http://"+p.httpAdr+path, v)
}

// httpClient returns a client that reaches p (inside its namespace).
func (h *harness) httpClient(p *proc) *http.Client {
	if p.netns == "" {
		return http.DefaultClient
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
			return dialIn(p.netns, network, addr, 5*time.Second)
		},
		DisableKeepAlives: true,
	}}
}

func getJSONVia(c *http.Client, url string, v any) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func byName(nodes []*proc, name string) *proc {
	for _, n := range nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// client is a plain-text IMAP client for tests: one command at a time,
// responses returned whole.
type client struct {
	conn net.Conn
	br   *bufio.Reader
	n    int
}

// errBye is returned (wrapped) when the server said BYE.
var errBye = errors.New("server said BYE")

// dial connects to addr (from 127.0.0.9 on loopback, or inside netns)
// and reads the greeting.
func dial(netns, addr string) (*client, error) {
	var (
		conn net.Conn
		err  error
	)
	if netns != "" {
		conn, err = dialIn(netns, "tcp", addr, 5*time.Second)
	} else {
		d := net.Dialer{Timeout: 5 * time.Second}
		if strings.HasPrefix(addr, "127.") {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}
		}
		conn, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	c := &client{conn: conn, br: bufio.NewReader(conn)}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	l, err := c.br.ReadString('\n')
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if !strings.HasPrefix(l, "* OK") {
		conn.Close()
		return nil, fmt.Errorf("greeting %q", l)
	}
	return c, nil
}

// cmd sends one command and returns the response up to and including the
// tagged line. A tagged NO or BAD is an error; an untagged BYE before the
// tagged line returns what was read and wraps errBye.
func (c *client) cmd(command string) (string, error) {
	c.n++
	tag := fmt.Sprintf("t%d", c.n)
	c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c.conn, tag+" "+command+"\r\n"); err != nil {
		return "", fmt.Errorf("%s: write: %w", command, err)
	}
	return c.readTagged(tag, command)
}

func (c *client) readTagged(tag, command string) (string, error) {
	var sb strings.Builder
	for {
		l, err := c.br.ReadString('\n')
		sb.WriteString(l)
		if strings.HasPrefix(l, "* BYE") {
			return sb.String(), fmt.Errorf("%s: %w: %q", command, errBye, l)
		}
		if err != nil {
			return sb.String(), fmt.Errorf("%s: %w (%q)", command, err, sb.String())
		}
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				return sb.String(), fmt.Errorf("%s: %q", command, l)
			}
			return sb.String(), nil
		}
	}
}

// login logs user in.
func (c *client) login(user string) error {
	_, err := c.cmd(fmt.Sprintf("LOGIN %s %s", user, password))
	return err
}

// nodeName asks ID which node serves the session.
func (c *client) nodeName() (string, error) {
	out, err := c.cmd("ID NIL")
	if err != nil {
		return "", err
	}
	i := strings.Index(out, `"node=`)
	if i < 0 {
		return "", fmt.Errorf("no node in the ID reply %q", out)
	}
	rest := out[i+len(`"node=`):]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return "", fmt.Errorf("bad ID reply %q", out)
	}
	return rest[:j], nil
}

func (c *client) close() { c.conn.Close() }

// servedAt logs user in at the entry node's client listener and returns
// the name of the node serving the session, then logs out.
func servedAt(netns, entry, user string) (string, error) {
	c, err := dial(netns, entry)
	if err != nil {
		return "", err
	}
	defer c.close()
	if err := c.login(user); err != nil {
		return "", err
	}
	name, err := c.nodeName()
	if err != nil {
		return "", err
	}
	return name, c.logout()
}

// logout says LOGOUT and expects BYE, then the tagged OK.
func (c *client) logout() error {
	c.n++
	tag := fmt.Sprintf("t%d", c.n)
	c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c.conn, tag+" LOGOUT\r\n"); err != nil {
		return fmt.Errorf("LOGOUT: %w", err)
	}
	_, err := c.readTagged(tag, "LOGOUT")
	if errors.Is(err, errBye) {
		_, err = c.readTagged(tag, "LOGOUT")
	}
	return err
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
