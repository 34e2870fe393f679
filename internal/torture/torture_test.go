package torture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nfsimap/nfsimap/internal/nfstest"
	"github.com/nfsimap/nfsimap/node/maildir"
)

func TestMain(m *testing.M) {
	RunChild()
	// Mounts left by a crashed earlier run (their server is gone) would
	// only clutter the mount table; live mounts are not touched.
	if nfstest.Available() == nil {
		if _, err := nfstest.UnmountStale(nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(m.Run())
}

// variant is one torture run: the faults on every mount and whether a
// writer is killed mid-run.
type variant struct {
	name   string
	faults nfstest.Faults
	kill   bool
}

var variants = []variant{
	{name: "plain"},
	{name: "no-close-to-open", faults: nfstest.Faults{NoCloseToOpen: true}},
	{name: "estale", faults: nfstest.Faults{EStaleRate: 0.02}},
	{name: "delayed-entries", faults: nfstest.Faults{DelayNewEntries: 1500 * time.Millisecond}},
	{name: "non-atomic-excl", faults: nfstest.Faults{NonAtomicExcl: true}},
	{name: "coarse-mtime", faults: nfstest.Faults{CoarseMtime: true}},
	{name: "silly-rename", faults: nfstest.Faults{SillyRename: true}},
	{name: "kill", kill: true},
	{name: "kill-estale", faults: nfstest.Faults{EStaleRate: 0.02}, kill: true},
	// Everything but nocto at once, and a kill.
	{name: "all-kill", faults: nfstest.Faults{
		EStaleRate: 0.02, DelayNewEntries: time.Second, NonAtomicExcl: true,
		CoarseMtime: true, SillyRename: true,
	}, kill: true},
}

func TestTorture(t *testing.T) {
	if err := nfstest.Available(); err != nil {
		t.Skipf("torture needs NFS-like mounts: %v", err)
	}
	cfg, err := DefaultConfig().FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	run := variants
	if testing.Short() && os.Getenv(EnvDuration) == "" {
		// -short: a taste, the plain run and a kill.
		cfg.Duration = 4 * time.Second
		run = []variant{variants[0], variants[len(variants)-1]}
	}
	t.Logf("torture: %d writers x %d sessions, %v per variant, seed %d (%s=%d to repeat)",
		cfg.Writers, cfg.Sessions, cfg.Duration, cfg.Seed, EnvSeed, cfg.Seed)
	// Each variant needs its run time plus set-up, check and the tail of
	// lock timeouts; refuse to start what go test's -timeout would kill.
	if dl, ok := t.Deadline(); ok {
		need := time.Duration(len(run)) * (cfg.Duration + 20*time.Second)
		if left := time.Until(dl); left < need {
			t.Fatalf("%d variants of %v need about %v; go test -timeout leaves %v: raise -timeout",
				len(run), cfg.Duration, need.Round(time.Minute), left.Round(time.Second))
		}
	}
	for i, v := range run {
		t.Run(v.name, func(t *testing.T) {
			c := cfg
			c.Seed = cfg.Seed + uint64(i)*1000
			runVariant(t, c, v)
		})
	}
}

// child is a running child process.
type child struct {
	name   string
	cmd    *exec.Cmd
	out    *syncBuffer
	done   chan error // receives Wait's result once, then is closed
	killed bool
}

func startChild(t *testing.T, name string, cfg childConfig) *child {
	t.Helper()
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	c := &child{name: name, cmd: cmd, out: out, done: make(chan error, 1)}
	go func() {
		c.done <- cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		// A child still running when the test ends (a failed test)
		// must not keep using the mounts, which are unmounted next.
		// Kill after the exit is harmless (os.ErrProcessDone).
		_ = cmd.Process.Kill()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not exit after SIGKILL", name, cmd.Process.Pid)
		}
	})
	return c
}

// syncBuffer collects a child's output; it may be read while the child
// still writes.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes returns a copy of what was written so far.
func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// tail returns at most the last n bytes of b.
func tail(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return append([]byte("...\n"), b[len(b)-n:]...)
}

func setupSpool(t *testing.T, inbox string, mailboxes []string, staleAge time.Duration) map[string]uint32 {
	t.Helper()
	ctx := context.Background()
	store, err := maildir.New(maildir.Paths{Inbox: inbox, Root: inbox}, storeOptions("setup", staleAge, nil))
	if err != nil {
		t.Fatal(err)
	}
	uidv := map[string]uint32{}
	for _, name := range mailboxes {
		if name != "INBOX" {
			if err := store.Create(ctx, name); err != nil {
				t.Fatalf("creating %s: %v", name, err)
			}
		}
		mb, err := store.Mailbox(ctx, name)
		if err != nil {
			t.Fatalf("opening %s: %v", name, err)
		}
		snap, err := mb.Sync(ctx, maildir.SyncOptions{})
		if err != nil {
			t.Fatalf("first sync of %s: %v", name, err)
		}
		uidv[name] = snap.UIDValidity
	}
	return uidv
}

// workDir returns a directory for the run's spool and journals: under
// $NFSIMAP_TORTURE_KEEP (kept for a post-mortem) when set, else a
// temporary one.
func workDir(t *testing.T, name string) string {
	t.Helper()
	keep := os.Getenv(EnvKeep)
	if keep == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(keep, name+"-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("keeping spool, journals and traces in %s", dir)
	return dir
}

// traceFile writes the mount's change trace to path. With history set,
// every version of a uidlist renamed into place is copied there too (the
// copy is taken inside the FUSE request, so it is exactly that version).
func traceFile(t *testing.T, path, history string) func(op string, pid uint32, paths ...string) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var mu sync.Mutex
	n := 0
	return func(op string, pid uint32, paths ...string) {
		now := time.Now().Format("15:04:05.000000")
		line := fmt.Sprintf("%s %s pid=%d %s\n", now, op, pid, strings.Join(paths, " "))
		mu.Lock()
		defer mu.Unlock()
		_, _ = f.WriteString(line)
		if history == "" || op != "rename" || len(paths) != 2 || filepath.Base(paths[1]) != maildir.UidlistName {
			return
		}
		n++
		if data, err := os.ReadFile(paths[1]); err == nil {
			dir := filepath.Base(filepath.Dir(paths[1]))
			name := fmt.Sprintf("%s-%s-%05d-pid%d", now, dir, n, pid)
			_ = os.WriteFile(filepath.Join(history, name), data, 0o644)
		}
	}
}

func runVariant(t *testing.T, cfg Config, v variant) {
	work := workDir(t, v.name)
	backing := filepath.Join(work, "spool")
	journals := filepath.Join(work, "journals")
	for _, d := range []string{backing, journals} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	history := ""
	if os.Getenv(EnvKeep) != "" {
		history = filepath.Join(work, "uidlists")
		if err := os.Mkdir(history, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	inbox := filepath.Join(backing, "Maildir")
	uidv := setupSpool(t, inbox, cfg.Mailboxes, cfg.StaleAge)

	var mounts []*nfstest.Mount
	newMount := func() *nfstest.Mount {
		mountOpt := nfstest.Options{
			CacheDir: true,
			Seed:     int64(cfg.Seed) + int64(len(mounts)) + 1,
			Trace:    traceFile(t, filepath.Join(work, fmt.Sprintf("trace-%d.log", len(mounts))), history),
		}
		m := nfstest.MountT(t, backing, mountOpt)
		m.SetFaults(v.faults)
		mounts = append(mounts, m)
		return m
	}

	deadline := time.Now().Add(cfg.Duration)
	base := childConfig{
		Sessions: cfg.Sessions, Writers: cfg.Writers, Mailboxes: cfg.Mailboxes, Journals: journals,
		Deadline: deadline, Seed: cfg.Seed, StaleAge: cfg.StaleAge,
		MTARate: cfg.MTARate, MaxLive: cfg.MaxLive,
	}
	var children []*child
	for i := range cfg.Writers {
		m := newMount()
		c := base
		c.Role, c.Index, c.Host = roleWriter, i, "node"+string(rune('a'+i))
		c.Maildir = filepath.Join(m.Dir, "Maildir")
		children = append(children, startChild(t, c.Host, c))
	}
	mtaMount := newMount()
	mc := base
	mc.Role, mc.Index, mc.Host, mc.Maildir = roleMTA, 0, "mx", filepath.Join(mtaMount.Dir, "Maildir")
	children = append(children, startChild(t, "mta", mc))

	if v.kill {
		// Kill writer 0 in the middle, then let a new writer process
		// take over its mount (a restarted node).
		select {
		case <-time.After(cfg.Duration / 2):
		case err := <-children[0].done:
			t.Fatalf("writer 0 ended before the kill: %v\n%s", err, tail(children[0].out.Bytes(), 16<<10))
		}
		children[0].killed = true
		if err := children[0].cmd.Process.Kill(); err != nil {
			t.Fatalf("kill: %v", err)
		}
		t.Logf("killed writer 0 (pid %d) mid-run", children[0].cmd.Process.Pid)
		c := base
		c.Role, c.Index, c.Host = roleWriter, cfg.Writers, "node-restarted"
		c.Maildir = filepath.Join(mounts[0].Dir, "Maildir")
		children = append(children, startChild(t, c.Host, c))
	}

	// Lock timeouts bound how long a child may run past the deadline.
	limit := time.Until(deadline) + 90*time.Second
	timer := time.NewTimer(limit)
	defer timer.Stop()
	failed := false
	for _, c := range children {
		select {
		case err := <-c.done:
			if c.killed {
				continue
			}
			if err != nil {
				failed = true
				t.Errorf("%s failed: %v\n%s", c.name, err, tail(c.out.Bytes(), 16<<10))
			} else if c.out.Len() > 0 {
				t.Logf("%s output (end):\n%s", c.name, tail(c.out.Bytes(), 4<<10))
			}
		case <-timer.C:
			for _, c := range children {
				_ = c.cmd.Process.Kill()
			}
			t.Fatalf("%s still running %v after the deadline\n%s", c.name, limit, tail(c.out.Bytes(), 16<<10))
		}
	}

	for i, m := range mounts {
		m.SetFaults(nfstest.Faults{})
		c := m.Counters()
		t.Logf("mount %d: lookups %d getattrs %d readdirs %d opens %d creates %d renames %d links %d unlinks %d fsyncs %d; fault hits: estale %d hidden %d kept-cache %d excl-nonatomic %d excl-race %d coarse %d silly %d",
			i, c.Lookup, c.Getattr, c.Readdir, c.Open, c.Create, c.Rename, c.Link, c.Unlink, c.Fsync,
			c.EStale, c.Hidden, c.KeptCache, c.ExclNonAtomic, c.ExclRace, c.CoarseMtime, c.SillyRename)
	}

	paths, err := filepath.Glob(filepath.Join(journals, "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := check(context.Background(), checkInput{
		Maildir: inbox, Mailboxes: cfg.Mailboxes, UIDValidity: uidv,
		Journals: paths, StaleAge: cfg.StaleAge,
	})
	if err != nil {
		t.Fatalf("checker: %v", err)
	}
	if len(rep.Problems) > 0 || failed {
		t.Errorf("spool check: %v", rep)
	} else {
		t.Logf("spool check passed: %v", rep)
	}
	if rep.Done[OpDeliver] == 0 || rep.Done[OpMTA] == 0 {
		t.Errorf("the run did too little to prove anything: %v", rep)
	}
}

func TestReadID(t *testing.T) {
	msg := buildMessageForTest("w1-s0-7")
	id, err := ReadID(bytes.NewReader(msg))
	if err != nil || id != "w1-s0-7" {
		t.Fatalf("ReadID = %q, %v", id, err)
	}
	id, err = ReadID(strings.NewReader("Subject: x\r\n\r\nX-Torture-ID: body\r\n"))
	if err != nil || id != "" {
		t.Fatalf("ID from the body: %q, %v", id, err)
	}
	id, err = ReadID(strings.NewReader("x-torture-id:   lower\n\n"))
	if err != nil || id != "lower" {
		t.Fatalf("lower-case header: %q, %v", id, err)
	}
}

func TestParseJournal(t *testing.T) {
	good := `{"seq":1,"phase":"begin","op":"deliver","mbox":"INBOX","id":"a"}` + "\n" +
		`{"seq":2,"phase":"done","op":"deliver","mbox":"INBOX","uid":3,"id":"a"}` + "\n"
	recs, err := ParseJournal(strings.NewReader(good + `{"seq":3,"pha`))
	if err != nil || len(recs) != 2 || recs[1].UID != 3 {
		t.Fatalf("torn journal: %v %v", recs, err)
	}
	_, err = ParseJournal(strings.NewReader(`{"seq":1,"phase":"begin"` + "\n" + good))
	if !errors.Is(err, ErrBadJournal) {
		t.Fatalf("bad middle line: %v", err)
	}
	_, err = ParseJournal(strings.NewReader(strings.Replace(good, `"seq":2`, `"seq":5`, 1)))
	if !errors.Is(err, ErrBadJournal) {
		t.Fatalf("sequence gap: %v", err)
	}
}

func FuzzParseJournal(f *testing.F) {
	f.Add([]byte(`{"seq":1,"phase":"begin","op":"deliver","mbox":"INBOX","id":"a"}` + "\n"))
	f.Add([]byte("{}\n{\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ParseJournal(bytes.NewReader(data))
		if err == nil {
			for i, r := range recs {
				if r.Seq != int64(i+1) {
					t.Fatalf("record %d has seq %d", i, r.Seq)
				}
			}
		}
	})
}

func FuzzReadID(f *testing.F) {
	f.Add([]byte("X-Torture-ID: a\r\n\r\n"))
	f.Add([]byte("Subject: x\n\nbody"))
	f.Add([]byte("\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		id, err := ReadID(bytes.NewReader(data))
		if err == nil && strings.ContainsAny(id, "\r\n") {
			t.Fatalf("ID %q spans lines", id)
		}
	})
}
