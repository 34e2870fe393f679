// Package dovecot runs Debian's Dovecot (dovecot-imapd) on loopback as a
// reference server for tests: where Dovecot's answer is the right one, a
// test sends the same commands to it and to nfsimap.
//
// Each Server has a private configuration (from dovecot.conf.tmpl),
// base_dir, state_dir, log and local index under its own temp dir, listens
// on 127.0.0.1 on a free port and serves the maildirs SPOOL/USER. It is
// stopped through the pid in its base_dir's master.pid, never by name.
//
// Dovecot refuses to run mail processes as root, so Start creates the
// system user MailUser when it is missing and hands the spool to it.
//
// Dovecot moves new/ to cur/ on a read-write SELECT, expunges on CLOSE and
// writes dovecot-uidlist files into the spool: give it its own copy. After a
// failed login it delays the following logins from 127.0.0.1 by 2 to 15
// seconds (its auth penalty): try wrong passwords last.
package dovecot

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// Binary is where Debian's dovecot-core installs the server.
const Binary = "/usr/sbin/dovecot"

// MailUser is the system user the mail processes run as.
const MailUser = "nfsimaptest"

//go:embed dovecot.conf.tmpl
var confTemplate string

var confTmpl = template.Must(template.New("dovecot.conf").Parse(confTemplate))

// confData fills dovecot.conf.tmpl.
type confData struct {
	Instance, BaseDir, StateDir, LogPath string
	Spool, IndexDir, HomeDir, PasswdFile string
	UID, GID, Port                       int
}

// Server is a running Dovecot.
type Server struct {
	addr    string
	dir     string // private dir: config, base_dir, state, log, index
	baseDir string
	logPath string
	conf    string

	stopOnce sync.Once
	stopErr  error
}

// Addr returns the IMAP address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.addr }

// ConfigPath returns the path of the generated dovecot.conf.
func (s *Server) ConfigPath() string { return s.conf }

// IndexDir returns the directory of Dovecot's local indexes (one per user).
func (s *Server) IndexDir() string { return filepath.Join(s.dir, "index") }

// Log returns what Dovecot has logged so far.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// skipOrFail skips the test, or fails it when the environment variable CI
// is set (CI must run every oracle test).
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("dovecot oracle unavailable in CI: %s", msg)
	}
	t.Skipf("dovecot oracle unavailable: %s", msg)
}

// Start runs Dovecot for the maildirs spool/USER, with the users and
// passwords given (plain text, as in a passwd-file with {PLAIN}). It stops
// Dovecot in t.Cleanup. The spool is chowned to MailUser, and directories
// above it get search permission for others so the mail processes reach it.
func Start(t testing.TB, spool string, users map[string]string) *Server {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		skipOrFail(t, "%s missing (apt-get install dovecot-imapd): %v", Binary, err)
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root to run Dovecot with its own mail user")
	}
	uid, gid, err := mailUser()
	if err != nil {
		t.Fatalf("dovecot: %v", err)
	}
	spool, err = filepath.Abs(spool)
	if err != nil {
		t.Fatal(err)
	}
	if err := prepareSpool(spool, uid, gid); err != nil {
		t.Fatalf("dovecot: %v", err)
	}

	// A private dir outside t.TempDir(), whose parents are 0700: Dovecot's
	// unprivileged processes must read the config and passwd-file.
	dir, err := os.MkdirTemp("", "nfsimap-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Server{dir: dir, baseDir: filepath.Join(dir, "run"), logPath: filepath.Join(dir, "dovecot.log"), conf: filepath.Join(dir, "dovecot.conf")}
	for _, d := range []string{"state", "index", "home"} {
		p := filepath.Join(dir, d)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if d != "state" {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, passwdFile(users), 0o644); err != nil {
		t.Fatal(err)
	}
	data := confData{
		BaseDir:    s.baseDir,
		StateDir:   filepath.Join(dir, "state"),
		LogPath:    s.logPath,
		Spool:      spool,
		IndexDir:   filepath.Join(dir, "index"),
		HomeDir:    filepath.Join(dir, "home"),
		PasswdFile: passwd,
		UID:        uid,
		GID:        gid,
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("dovecot: %v\nlog:\n%s", err, s.Log())
		}
	})
	// The free port may be taken by someone else before Dovecot binds it:
	// then try another.
	for attempt := 1; ; attempt++ {
		out, err := s.launch(data)
		if err == nil {
			break
		}
		if attempt < 3 && strings.Contains(out+s.Log(), "in use") {
			t.Logf("dovecot: port taken, trying another: %s", out)
			continue
		}
		t.Fatalf("dovecot -c %s: %v\n%s\nlog:\n%s", s.conf, err, out, s.Log())
	}
	if err := waitListening(s.addr, 15*time.Second); err != nil {
		t.Fatalf("dovecot: %v\nlog:\n%s", err, s.Log())
	}
	if _, err := s.masterPID(15 * time.Second); err != nil {
		t.Fatalf("dovecot: %v\nlog:\n%s", err, s.Log())
	}
	return s
}

// masterPID reads base_dir/master.pid, waiting up to timeout for Dovecot
// to write it (it does so after it started listening).
func (s *Server) masterPID(timeout time.Duration) (int, error) {
	path := filepath.Join(s.baseDir, "master.pid")
	deadline := time.Now().Add(timeout)
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 1 {
				return pid, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no valid %s after %v (content %q, %v)", path, timeout, data, err)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

// launch writes the configuration for a fresh free port and starts
// Dovecot, which forks into the background and writes base_dir/master.pid.
// It returns Dovecot's output.
func (s *Server) launch(data confData) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	data.Port = port
	data.Instance = "nfsimap-test-" + strconv.Itoa(port)
	var conf bytes.Buffer
	if err := confTmpl.Execute(&conf, data); err != nil {
		return "", err
	}
	if err := os.WriteFile(s.conf, conf.Bytes(), 0o644); err != nil {
		return "", err
	}
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// Output goes to a file: the daemon keeps inherited pipes open.
	outPath := filepath.Join(s.dir, "start.out")
	out, err := os.Create(outPath)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(Binary, "-c", s.conf)
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	out.Close()
	msg, _ := os.ReadFile(outPath)
	return string(msg), err
}

// mailUser returns MailUser's uid and gid, creating the user if needed.
func mailUser() (uid, gid int, err error) {
	u, err := user.Lookup(MailUser)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		out, cerr := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", MailUser).CombinedOutput()
		// Another test process may have created it meanwhile (exit 9).
		if cerr != nil && !strings.Contains(string(out), "already exists") {
			return 0, 0, fmt.Errorf("useradd %s: %w: %s", MailUser, cerr, out)
		}
		u, err = user.Lookup(MailUser)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("mail user %s: %w", MailUser, err)
	}
	uid, err = strconv.Atoi(u.Uid)
	if err != nil {
		return 0, 0, err
	}
	gid, err = strconv.Atoi(u.Gid)
	if err != nil {
		return 0, 0, err
	}
	if uid == 0 {
		return 0, 0, fmt.Errorf("mail user %s has uid 0", MailUser)
	}
	return uid, gid, nil
}

// prepareSpool creates spool, chowns everything in it to uid:gid and makes
// the directories above it searchable by others.
func prepareSpool(spool string, uid, gid int) error {
	if err := os.MkdirAll(spool, 0o755); err != nil {
		return err
	}
	err := filepath.WalkDir(spool, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("chown spool: %w", err)
	}
	for dir := filepath.Dir(spool); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if mode := fi.Mode().Perm(); mode&0o001 == 0 {
			if err := os.Chmod(dir, mode|0o001); err != nil {
				return fmt.Errorf("make %s searchable: %w", dir, err)
			}
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}

// passwdFile renders users as passwd-file lines, sorted by name.
func passwdFile(users map[string]string) []byte {
	names := make([]string, 0, len(users))
	for n := range users {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&b, "%s:{PLAIN}%s\n", n, users[n])
	}
	return b.Bytes()
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening polls until addr accepts connections.
func waitListening(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s after %v: %w", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}

// Stop ends Dovecot (Start's cleanup does it too); later calls return the
// first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

// stop ends the Dovecot master by the pid in master.pid: SIGTERM, then
// SIGKILL if it is still there after 10 seconds.
func (s *Server) stop() error {
	// Start returned only once master.pid was written, so a missing file
	// means Dovecot never started or has already gone.
	if _, err := os.Stat(filepath.Join(s.baseDir, "master.pid")); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	pid, err := s.masterPID(5 * time.Second)
	if err != nil {
		return fmt.Errorf("stop dovecot: %w", err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("stop dovecot %d: %w", pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return fmt.Errorf("dovecot %d ignored SIGTERM for 10s; killed", pid)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	return nil
}

// alive reports whether pid runs (a zombie does not count).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}
