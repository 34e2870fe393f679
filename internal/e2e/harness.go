// Package e2e starts real nfsimap node processes for end-to-end tests:
// the binary built from this checkout, a config file, a passwd-file and a
// spool, on loopback ports. Test support only.
package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// moduleRoot finds the repository root from this file's location.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binary builds ./node once per test process (with the race detector when
// the tests run with it) and returns the binary's path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nfsimap-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "nfsimap")
		args := []string{"build", "-o", buildPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "./node")
		cmd := exec.Command("go", args...)
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// Options describe one node.
type Options struct {
	// Spool is the spool directory; "" makes a new one. Nodes given the
	// same spool share it, as nodes on one NFS filer do.
	Spool string
	// Users maps user names to plain passwords; nil means user1..user6
	// with password "password".
	Users map[string]string
	// Config is extra YAML appended to the generated config (top-level
	// keys not otherwise set).
	Config string
	// PollInterval is how often selected mailboxes are checked for
	// changes made elsewhere (default 200ms in tests).
	PollInterval time.Duration
	// Env is added to the process environment.
	Env []string
}

// Node is a running nfsimap process.
type Node struct {
	Addr  string // IMAP address
	Dir   string // config, passwd, index and log live here
	Spool string
	Log   string // path of the node's log

	t    testing.TB
	cmd  *exec.Cmd
	done chan error
}

// DefaultUsers are the users a node gets when Options.Users is nil.
func DefaultUsers() map[string]string {
	users := map[string]string{}
	for i := 1; i <= 6; i++ {
		users[fmt.Sprintf("user%d", i)] = "password"
	}
	return users
}

// Start runs a node and waits until it listens. The node is stopped with
// SIGTERM at the end of the test; its log is checked for panics and data
// races, which fail the test.
func Start(t testing.TB, opt Options) *Node {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	if opt.Spool == "" {
		opt.Spool = filepath.Join(dir, "spool")
	}
	if err := os.MkdirAll(opt.Spool, 0o755); err != nil {
		t.Fatal(err)
	}
	if opt.Users == nil {
		opt.Users = DefaultUsers()
	}
	if opt.PollInterval == 0 {
		opt.PollInterval = 200 * time.Millisecond
	}
	var pw strings.Builder
	names := make([]string, 0, len(opt.Users))
	for u := range opt.Users {
		names = append(names, u)
	}
	sort.Strings(names)
	for _, u := range names {
		fmt.Fprintf(&pw, "%s:{PLAIN}%s::::::\n", u, opt.Users[u])
	}
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, []byte(pw.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`listen:
  imap: "127.0.0.1:0"
auth:
  passwd_file: %q
spool:
  inbox: %q
index_dir: %q
poll_interval: %s
shutdown_grace: 2s
limits:
  fail_delay: 10ms
  fail_delay_max: 50ms
log:
  level: debug
admin:
  socket: %q
%s`, passwd, filepath.Join(opt.Spool, "%u"), filepath.Join(dir, "index"), opt.PollInterval, filepath.Join(dir, "admin.sock"), opt.Config)
	confPath := filepath.Join(dir, "nfsimap.yaml")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	n := &Node{Dir: dir, Spool: opt.Spool, Log: filepath.Join(dir, "node.log"), t: t, done: make(chan error, 1)}
	logf, err := os.Create(n.Log)
	if err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(bin, "serve", "-c", confPath)
	n.cmd.Stdout = logf
	n.cmd.Stderr = logf
	n.cmd.Env = append(os.Environ(), opt.Env...)
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	go func() { n.done <- n.cmd.Wait() }()
	t.Cleanup(n.stopAndCheck)

	deadline := time.Now().Add(30 * time.Second)
	for n.Addr == "" {
		if addr := listenAddr(n.Log); addr != "" {
			n.Addr = addr
			break
		}
		select {
		case err := <-n.done:
			n.done <- err
			t.Fatalf("node exited before listening: %v\n%s", err, n.LogText())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("node did not listen within 30s\n%s", n.LogText())
		}
	}
	return n
}

var listenRe = regexp.MustCompile(`msg=listening .*addr=(\S+)`)

func listenAddr(logPath string) string {
	f, err := os.Open(logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := listenRe.FindStringSubmatch(sc.Text()); m != nil {
			if _, _, err := net.SplitHostPort(m[1]); err == nil {
				return m[1]
			}
		}
	}
	return ""
}

// LogText returns the node's log so far.
func (n *Node) LogText() string {
	b, _ := os.ReadFile(n.Log)
	return string(b)
}

// Kill stops the node with SIGKILL and waits for it.
func (n *Node) Kill() {
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	err := <-n.done
	n.done <- err
}

// Stop sends SIGTERM and waits for the node to exit; it returns the exit
// error (nil for a clean exit).
func (n *Node) Stop() error {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.done:
		n.done <- err
		return err
	case <-time.After(30 * time.Second):
		_ = n.cmd.Process.Kill()
		err := <-n.done
		n.done <- err
		return fmt.Errorf("node did not stop within 30s after SIGTERM")
	}
}

func (n *Node) stopAndCheck() {
	err := n.Stop()
	log := n.LogText()
	if bytes.Contains([]byte(log), []byte("panic")) || strings.Contains(log, "WARNING: DATA RACE") {
		n.t.Errorf("node log shows a panic or a data race:\n%s", log)
	}
	if err != nil {
		var exitErr *exec.ExitError
		if !strings.Contains(err.Error(), "signal: killed") && !(asExit(err, &exitErr) && exitErr.ExitCode() == -1) {
			n.t.Errorf("node exited with %v\n%s", err, tail(log, 4000))
		}
	}
	if n.t.Failed() {
		n.t.Logf("node log (%s):\n%s", n.Log, tail(log, 8000))
	}
}

func asExit(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}
