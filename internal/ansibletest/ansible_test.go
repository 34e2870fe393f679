// Package ansibletest runs the Ansible role and playbooks of ansible/
// against this machine: a syntax check of every playbook, and a real run of
// the nfsimap role into a temporary root with the binary built from this
// checkout, after which the installed node is started and logged in to.
//
// Without ansible-playbook the tests skip, except under CI=true where they
// fail (.ci/deps installs ansible-core).
package ansibletest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nfsimap/nfsimap/internal/testcert"
)

// needAnsible returns the path of ansible-playbook or skips the test.
func needAnsible(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ansible-playbook")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ansible-playbook is missing under CI=true (.ci/deps installs ansible-core): %v", err)
		}
		t.Skip("ansible-playbook not installed (apt-get install ansible-core); skipping the Ansible tests")
	}
	return p
}

// ansibleDir is the checkout's ansible/ directory.
func ansibleDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs(filepath.Join("..", "..", "ansible"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "roles", "nfsimap", "tasks", "main.yml")); err != nil {
		t.Fatalf("ansible role not found: %v", err)
	}
	return d
}

// ansibleEnv keeps Ansible's own files inside the test's temporary
// directory and its output plain. Ansible refuses to run without a UTF-8
// locale; C.UTF-8 is in every Debian libc.
func ansibleEnv(t *testing.T) []string {
	t.Helper()
	home := t.TempDir()
	return append(os.Environ(),
		"LC_ALL=C.UTF-8",
		"LANG=C.UTF-8",
		"ANSIBLE_HOME="+home,
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(home, "tmp"),
		"ANSIBLE_REMOTE_TEMP="+filepath.Join(home, "remote"),
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_FORCE_COLOR=0",
		"ANSIBLE_RETRY_FILES_ENABLED=0",
		"ANSIBLE_CONFIG="+filepath.Join(home, "none.cfg"),
	)
}

// playbook runs ansible-playbook in dir and returns its output.
func playbook(t *testing.T, bin, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestSyntaxCheck(t *testing.T) {
	bin := needAnsible(t)
	dir := ansibleDir(t)
	env := ansibleEnv(t)
	books, err := filepath.Glob(filepath.Join(dir, "*.yml"))
	if err != nil || len(books) < 3 {
		t.Fatalf("playbooks in %s: %v %v", dir, books, err)
	}
	for _, b := range books {
		name := filepath.Base(b)
		out, err := playbook(t, bin, dir, env, "-i", "inventory/example", "--syntax-check",
			"-e", "nfsimap_new_node=imap01", name)
		if err != nil {
			t.Errorf("%s: syntax check failed: %v\n%s", name, err, out)
		}
	}
}

// recap is one host's line of the PLAY RECAP.
type recap struct{ ok, changed, unreachable, failed int }

var recapRE = regexp.MustCompile(`(?m)^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)`)

func parseRecap(t *testing.T, out, host string) recap {
	t.Helper()
	for _, m := range recapRE.FindAllStringSubmatch(out, -1) {
		if m[1] != host {
			continue
		}
		n := func(s string) int { v, _ := strconv.Atoi(s); return v }
		return recap{n(m[2]), n(m[3]), n(m[4]), n(m[5])}
	}
	t.Fatalf("no PLAY RECAP line for %s in:\n%s", host, out)
	return recap{}
}

// buildNode builds the nfsimap binary of this checkout.
func buildNode(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "nfsimap")
	cmd := exec.Command("go", "build", "-o", out, "github.com/nfsimap/nfsimap/node")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./node: %v\n%s", err, b)
	}
	return out
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// currentOwner is the user and group the role installs the files as here.
func currentOwner(t *testing.T) (string, string) {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	return u.Username, g.Name
}

// whoEmptyRE is the test upgrade.yml applies to `nfsimap who` output.
var whoEmptyRE = regexp.MustCompile(`(^|\s)0 connection\(s\)\s*$`)

func TestRoleLocal(t *testing.T) {
	bin := needAnsible(t)
	dir := ansibleDir(t)
	env := ansibleEnv(t)
	node := buildNode(t)
	work := t.TempDir()
	root := filepath.Join(work, "root")
	// What every Debian host has; the role creates only its own
	// directories.
	for _, d := range []string{"etc", "usr/local/bin", "var/cache", "run"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	owner, group := currentOwner(t)
	certSrc, keySrc := testcert.WriteDir(t, work, "localhost")
	imap, internal, gossip, httpPort := freePort(t), freePort(t), freePort(t), freePort(t)
	spool := filepath.Join(work, "spool")
	vars := map[string]any{
		"nfsimap_root":           root,
		"nfsimap_manage_service": false,
		"nfsimap_create_user":    false,
		"nfsimap_user":           owner,
		"nfsimap_group":          group,
		"nfsimap_file_owner":     owner,
		"nfsimap_file_group":     group,
		"nfsimap_binary_src":     node,
		"nfsimap_node_name":      "ansible-test",
		"nfsimap_listen_imap":    fmt.Sprintf("127.0.0.1:%d", imap),
		"nfsimap_internal_addr":  fmt.Sprintf("127.0.0.1:%d", internal),
		"nfsimap_ring_bind":      fmt.Sprintf("127.0.0.1:%d", gossip),
		"nfsimap_ring_profile":   "local",
		"nfsimap_cluster_secret": "ansible test cluster secret",
		"nfsimap_passwd_content": "demo:{PLAIN}demo::::::\n",
		"nfsimap_spool_inbox":    spool + "/%Lu/Maildir",
		"nfsimap_http_addr":      fmt.Sprintf("127.0.0.1:%d", httpPort),
		// The admin commands of the playbooks (-c config) find the node
		// through this path, so it is the real one, not under the prefix.
		"nfsimap_admin_socket":   filepath.Join(root, "run", "admin.sock"),
		"nfsimap_ready_delay":    1,
		"nfsimap_drain_grace":    1,
		"nfsimap_shutdown_grace": 1,
		"nfsimap_config_extra":   map[string]any{"poll_interval": "5s", "timeouts": map[string]any{"idle": "31m"}},
		"nfsimap_tls_cert_src":   certSrc,
		"nfsimap_tls_key_src":    keySrc,
		"nfsimap_tls_cert_file":  "/etc/nfsimap/tls/cert.pem",
		"nfsimap_tls_key_file":   "/etc/nfsimap/tls/key.pem",
		// Only the fstab line: nothing is mounted under a prefix.
		"nfsimap_spool_mount_src":  "filer1:/export/mail",
		"nfsimap_spool_mount_path": "/var/spool/mail",
	}
	varsFile := filepath.Join(work, "vars.json")
	b, err := json.Marshal(vars)
	if err != nil {
		t.Fatal(err)
	}
	book := filepath.Join(work, "play.yml")
	play := fmt.Sprintf("- hosts: all\n  gather_facts: false\n  roles:\n    - role: %q\n", filepath.Join(dir, "roles", "nfsimap"))
	if err := os.WriteFile(varsFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(book, []byte(play), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func() recap {
		t.Helper()
		start := time.Now()
		out, err := playbook(t, bin, work, env, "-i", "localhost,", "-c", "local", "-e", "@"+varsFile, book)
		if err != nil {
			t.Fatalf("ansible-playbook: %v\n%s", err, out)
		}
		r := parseRecap(t, out, "localhost")
		if r.failed != 0 || r.unreachable != 0 {
			t.Fatalf("recap %+v\n%s", r, out)
		}
		t.Logf("role run: %+v in %v", r, time.Since(start).Round(time.Millisecond))
		return r
	}
	if r := run(); r.changed == 0 {
		t.Fatalf("first run changed nothing: %+v", r)
	}
	if r := run(); r.changed != 0 {
		t.Fatalf("second run is not idempotent: changed=%d", r.changed)
	}

	at := func(p string) string { return filepath.Join(root, p) }
	for p, want := range map[string]fs.FileMode{
		"usr/local/bin/nfsimap":              0o755,
		"etc/nfsimap":                        fs.ModeDir | 0o750,
		"etc/nfsimap/nfsimap.yaml":           0o640,
		"etc/nfsimap/cluster.secret":         0o600,
		"etc/nfsimap/passwd":                 0o640,
		"etc/systemd/system/nfsimap.service": 0o644,
		"var/cache/nfsimap/index":            fs.ModeDir | 0o750,
		"var/cache/nfsimap":                  fs.ModeDir | 0o750,
	} {
		fi, err := os.Stat(at(p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if got := fi.Mode() & (fs.ModeDir | fs.ModePerm); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
	if fstab, err := os.ReadFile(at("etc/fstab")); err != nil || string(fstab) != "filer1:/export/mail /var/spool/mail nfs rw,hard,noatime,_netdev 0 0\n" {
		t.Errorf("fstab: %q %v", fstab, err)
	}
	if s, err := os.ReadFile(at("etc/nfsimap/cluster.secret")); err != nil || strings.TrimSpace(string(s)) != "ansible test cluster secret" {
		t.Errorf("cluster secret: %q %v", s, err)
	}

	// The installed binary accepts the rendered config.
	installed := at("usr/local/bin/nfsimap")
	cfg := at("etc/nfsimap/nfsimap.yaml")
	out, err := exec.Command(installed, "config", "check", "-c", cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("nfsimap config check: %v\n%s", err, out)
	}
	for _, want := range []string{"node_name: ansible-test", "poll_interval: 5s", "idle: 31m0s", "secret_file: /etc/nfsimap/cluster.secret"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("effective config lacks %q:\n%s", want, out)
		}
	}

	verifyUnit(t, root, work)
	// runTasks runs one tasks file of the role against the node the test
	// started (drain.yml of upgrade.yml, wait_ring.yml of add-node.yml).
	runTasks := func(tasks string) {
		t.Helper()
		p := filepath.Join(work, "tasks-"+tasks)
		text := fmt.Sprintf("- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.include_role:\n        name: %q\n        tasks_from: %s\n",
			filepath.Join(dir, "roles", "nfsimap"), tasks)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		out, err := playbook(t, bin, work, env, "-i", "localhost,", "-c", "local", "-e", "@"+varsFile, p)
		if err != nil {
			t.Fatalf("%s: %v\n%s", tasks, err, out)
		}
		if r := parseRecap(t, out, "localhost"); r.failed != 0 || r.unreachable != 0 {
			t.Fatalf("%s: recap %+v\n%s", tasks, r, out)
		}
		t.Logf("%s ran in %v", tasks, time.Since(start).Round(time.Millisecond))
	}
	serveAndLogin(t, installed, cfg, root, vars, runTasks)
}

// verifyUnit runs systemd-analyze verify on the unit, with its commands
// pointed into the temporary root.
func verifyUnit(t *testing.T, root, work string) {
	t.Helper()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: unit not verified")
		return
	}
	unit, err := os.ReadFile(filepath.Join(root, "etc/systemd/system/nfsimap.service"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(unit), "=/usr/local/bin/nfsimap ", "="+filepath.Join(root, "usr/local/bin/nfsimap")+" ")
	for _, want := range []string{"Type=simple", "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM", "TimeoutStopSec=32", "LimitNOFILE=1048576", "RequiresMountsFor=/var/spool/mail"} {
		if !strings.Contains(text, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	d := filepath.Join(work, "unit")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(d, "nfsimap.service")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sa, "verify", p).CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// serveAndLogin starts the installed binary with the rendered config (its
// file paths pointed into the temporary root), logs in over IMAP, checks
// /readyz, /ring and `nfsimap who`, and stops it with SIGTERM.
func serveAndLogin(t *testing.T, bin, cfg, root string, vars map[string]any, runTasks func(tasks string)) {
	t.Helper()
	sock := filepath.Join(root, "run", "admin.sock")
	cmd := exec.Command(bin, "serve", "-c", cfg,
		"--auth.passwd_file="+filepath.Join(root, "etc/nfsimap/passwd"),
		"--cluster.secret_file="+filepath.Join(root, "etc/nfsimap/cluster.secret"),
		"--index_dir="+filepath.Join(root, "var/cache/nfsimap/index"),
		"--tls.cert_file="+filepath.Join(root, "etc/nfsimap/tls/cert.pem"),
		"--tls.key_file="+filepath.Join(root, "etc/nfsimap/tls/key.pem"))
	logf, err := os.Create(filepath.Join(root, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	showLog := func() string { b, _ := os.ReadFile(filepath.Join(root, "serve.log")); return string(b) }

	httpURL := "http://" + vars["nfsimap_http_addr"].(string)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(httpURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("node exited: %v\n%s", err, showLog())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /readyz 200 within 20 s (%v)\n%s", err, showLog())
		}
		time.Sleep(50 * time.Millisecond) // polling the node's readiness
	}

	// add-node.yml's wait: /readyz, /ring lists the node alive.
	runTasks("wait_ring.yml")

	// /ring lists the node alive, as add-node.yml expects.
	var ring struct {
		Ring struct {
			Members []struct{ Name, State string } `json:"members"`
		} `json:"ring"`
	}
	resp, err := http.Get(httpURL + "/ring")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&ring)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(ring.Ring.Members) != 1 || ring.Ring.Members[0].Name != "ansible-test" || ring.Ring.Members[0].State != "alive" {
		t.Errorf("/ring members: %+v", ring.Ring.Members)
	}

	// login opens a connection, logs in as demo and selects INBOX.
	login := func() (net.Conn, *bufio.Reader) {
		t.Helper()
		conn, err := net.DialTimeout("tcp", vars["nfsimap_listen_imap"].(string), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		r := bufio.NewReader(conn)
		if greeting := expectOK(t, r, "*", showLog); !strings.Contains(greeting, "STARTTLS") {
			t.Errorf("greeting without STARTTLS (TLS files not used?): %s", greeting)
		}
		fmt.Fprintf(conn, "a1 LOGIN demo demo\r\n")
		expectOK(t, r, "a1", showLog)
		fmt.Fprintf(conn, "a2 SELECT INBOX\r\n")
		expectOK(t, r, "a2", showLog)
		return conn, r
	}
	who := func() string {
		t.Helper()
		out, err := exec.Command(bin, "who", "-s", sock).CombinedOutput()
		if err != nil {
			t.Fatalf("nfsimap who: %v\n%s", err, out)
		}
		return string(out)
	}
	waitNoSessions := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for w := who(); !whoEmptyRE.MatchString(w); w = who() {
			if time.Now().After(deadline) {
				t.Fatalf("nfsimap who still lists connections %s:\n%s", what, w)
			}
			time.Sleep(50 * time.Millisecond) // polling the node's connection list
		}
	}

	conn, r := login()
	if w := who(); whoEmptyRE.MatchString(w) || !strings.Contains(w, "demo") {
		t.Errorf("nfsimap who while logged in:\n%s", w)
	}
	fmt.Fprintf(conn, "a3 LOGOUT\r\n")
	expectOK(t, r, "a3", showLog)
	conn.Close()
	waitNoSessions("after LOGOUT")

	// The steps of upgrade.yml before the stop (drain.yml) with a session
	// open: nfsimap drain returns once the node said BYE (drain_grace
	// 1 s), nfsimap who then shows no connections; /readyz fails.
	_, r = login()
	runTasks("drain.yml")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("no BYE after the drain: %v", err)
		}
		if strings.HasPrefix(line, "* BYE") {
			break
		}
	}
	waitNoSessions("after the drain")
	if resp, err := http.Get(httpURL + "/readyz"); err != nil {
		t.Errorf("/readyz after the drain: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("/readyz answers 200 after the drain")
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Errorf("node exit after SIGTERM: %v\n%s", err, showLog())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("node did not stop within 15 s of SIGTERM\n%s", showLog())
	}
}

// TestExampleInventory runs site.yml for one host of the example inventory
// (its group_vars and host_vars as they are) into a temporary root, so the
// example renders to a config the binary accepts.
func TestExampleInventory(t *testing.T) {
	bin := needAnsible(t)
	dir := ansibleDir(t)
	env := ansibleEnv(t)
	node := buildNode(t)
	work := t.TempDir()
	root := filepath.Join(work, "root")
	for _, d := range []string{"etc", "usr/local/bin", "var/cache"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	owner, group := currentOwner(t)
	vars := map[string]any{
		"nfsimap_root":           root,
		"nfsimap_manage_service": false,
		"nfsimap_create_user":    false,
		"nfsimap_user":           owner,
		"nfsimap_group":          group,
		"nfsimap_file_owner":     owner,
		"nfsimap_file_group":     group,
		"nfsimap_binary_src":     node,
		"ansible_connection":     "local",
		"ansible_become":         false,
	}
	b, err := json.Marshal(vars)
	if err != nil {
		t.Fatal(err)
	}
	varsFile := filepath.Join(work, "vars.json")
	if err := os.WriteFile(varsFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := playbook(t, bin, dir, env, "-i", "inventory/example", "-l", "imap02", "-e", "@"+varsFile, "site.yml")
	if err != nil {
		t.Fatalf("site.yml: %v\n%s", err, out)
	}
	if r := parseRecap(t, out, "imap02"); r.failed != 0 || r.changed == 0 {
		t.Fatalf("recap %+v\n%s", r, out)
	}
	cfg, err := exec.Command(filepath.Join(root, "usr/local/bin/nfsimap"), "config", "check", "-c",
		filepath.Join(root, "etc/nfsimap/nfsimap.yaml")).CombinedOutput()
	if err != nil {
		t.Fatalf("config check: %v\n%s", err, cfg)
	}
	for _, want := range []string{"node_name: imap02", "ring_bind: 10.0.0.12:7946", "- 10.0.0.11:7946", "- 10.0.0.13:7946", "inbox: /var/spool/mail/%1Lu/%2Lu/%Lu"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("effective config lacks %q:\n%s", want, cfg)
		}
	}
}

// expectOK reads lines up to the one tagged tag and fails unless it is OK.
func expectOK(t *testing.T, r *bufio.Reader, tag string, showLog func() string) string {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading from the node: %v\n%s", err, showLog())
		}
		if strings.HasPrefix(line, tag+" ") {
			if !strings.HasPrefix(line, tag+" OK") {
				t.Fatalf("%s", line)
			}
			return line
		}
	}
}
