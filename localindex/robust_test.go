package localindex

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// session mimics what a session does with a mailbox's index: changes, Save,
// and now and then a fresh load and a STATUS read, each checked against the
// state the session holds in memory.
type session struct {
	t    *testing.T
	x    *Index
	m    *Mailbox
	next uint32
	n    int64
}

func newSession(t *testing.T, x *Index) *session {
	m := fillMailbox(t, x, "alice", "INBOX", 30)
	return &session{t: t, x: x, m: m, next: 31}
}

// step changes something and saves. Save errors are ignored, as the
// session must (serve from the spool); the memory stays right.
func (s *session) step() error {
	s.n++
	rec, ok := s.m.Lookup(s.next - 30)
	if ok {
		s.m.SetFlags(rec.UID, rec.Unique()+":2,S", false, FlagSeen, nil)
	}
	s.m.Upsert(makeRecord(s.next))
	s.m.Remove(s.next - 25)
	s.next++
	s.m.SetUIDNext(s.next)
	return s.m.Save(spoolN(s.n))
}

// check verifies that what is on disk is either absent, or a state equal to
// the memory when it claims the memory's spool state.
func (s *session) check(what string) {
	s.t.Helper()
	if got, want := s.m.Summary(), bruteSummary(s.m); got != want {
		s.t.Fatalf("%s: Summary %+v, computed %+v", what, got, want)
	}
	want := stateOf(s.m)
	got, err := s.x.LoadMailbox("alice", "INBOX")
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrCorrupt):
	case err != nil:
		s.t.Fatalf("%s: LoadMailbox: %v", what, err)
	default:
		st := stateOf(got)
		got.Close()
		if st.spool == want.spool && !st.equal(want) {
			s.t.Fatalf("%s: index claims the current spool state with different contents", what)
		}
	}
	sum, err := s.x.LoadSummary("alice", "INBOX")
	if err == nil && sum.Spool == want.spool {
		ms := s.m.Summary()
		ms.Updated = sum.Updated
		if *sum != ms {
			s.t.Fatalf("%s: summary %+v claims the current spool state, memory says %+v", what, *sum, ms)
		}
	}
}

// TestSurvivesDamage deletes and truncates index files between the steps of
// a session: every Save succeeds, and nothing on disk ever disagrees with
// the session.
func TestSurvivesDamage(t *testing.T) {
	dir := t.TempDir()
	x := openQuiet(t, dir, nil)
	s := newSession(t, x)
	defer s.m.Close()
	damage := []struct {
		name string
		do   func()
	}{
		{"nothing", func() {}},
		{"remove the whole index directory", func() { _ = os.RemoveAll(dir) }},
		{"remove the user directory", func() { _ = x.RemoveUser("alice") }},
		{"remove the index file", func() { _ = os.Remove(s.m.base + extIndex) }},
		{"remove the log", func() { _ = os.Remove(s.m.base + extLog) }},
		{"remove the summary", func() { _ = os.Remove(s.m.base + extSummary) }},
		{"truncate the index file", func() { _ = os.Truncate(s.m.base+extIndex, 100) }},
		{"truncate the index file to zero", func() { _ = os.Truncate(s.m.base+extIndex, 0) }},
		{"truncate the log", func() { _ = os.Truncate(s.m.base+extLog, 30) }},
		{"truncate the summary", func() { _ = os.Truncate(s.m.base+extSummary, 10) }},
		{"overwrite the log's tail in place", func() {
			if f, err := os.OpenFile(s.m.base+extLog, os.O_WRONLY, 0); err == nil {
				fi, _ := f.Stat()
				_, _ = f.WriteAt([]byte("garbage!"), max(fi.Size()-8, 0))
				f.Close()
			}
		}},
		{"replace the index by a directory", func() {
			_ = os.Remove(s.m.base + extIndex)
			_ = os.Mkdir(s.m.base+extIndex, 0o700)
		}},
	}
	for round := 0; round < 3; round++ {
		for _, d := range damage {
			if err := s.step(); err != nil {
				t.Fatalf("%s: Save: %v", d.name, err)
			}
			s.check("after save, before " + d.name)
			d.do()
			s.check(d.name)
			if err := s.step(); err != nil {
				t.Fatalf("Save after %s: %v", d.name, err)
			}
			s.check("save after " + d.name)
			_ = os.Remove(s.m.base + extIndex) // the directory, if any
		}
	}
	// A fresh load now gives exactly the session's state.
	if err := s.step(); err != nil {
		t.Fatal(err)
	}
	m2, err := x.LoadMailbox("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if !stateOf(m2).equal(stateOf(s.m)) {
		t.Fatal("final state differs")
	}
}

// TestInjectedWriteErrors: every write fails with EIO for a while. Saves
// report errors (which a session ignores), the index is Degraded and
// counts, writes are skipped until DegradedRetry passed, and then
// everything is written again.
func TestInjectedWriteErrors(t *testing.T) {
	clk := newClock()
	x := openTest(t, t.TempDir(), func(c *Config) { c.Now = clk.Now; c.DegradedRetry = time.Minute })
	s := newSession(t, x)
	defer s.m.Close()
	fail := true
	x.testWriteErr = func(string) error {
		if fail {
			return syscall.EIO
		}
		return nil
	}
	if err := s.step(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Save with failing disk: %v", err)
	}
	if !x.Degraded() {
		t.Fatal("not degraded after a write error")
	}
	s.check("after failed save")
	if err := s.step(); !errors.Is(err, ErrDegraded) {
		t.Fatalf("Save while degraded: %v", err)
	}
	st := x.Stats()
	if st.WriteErrors != 1 || st.Skipped != 1 || !st.Degraded {
		t.Errorf("stats %+v", st)
	}
	// Reads still work meanwhile: they give an older state, whose spool
	// state is older too.
	s.check("while degraded")
	fail = false
	if err := s.step(); !errors.Is(err, ErrDegraded) {
		t.Fatalf("Save before DegradedRetry passed: %v", err)
	}
	clk.Add(2 * time.Minute)
	if err := s.step(); err != nil {
		t.Fatalf("Save after recovery: %v", err)
	}
	if x.Degraded() {
		t.Error("still degraded after a good write")
	}
	m2, err := x.LoadMailbox("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if !stateOf(m2).equal(stateOf(s.m)) {
		t.Fatal("state after recovery differs")
	}
}

// TestDiskFull runs a session on a tiny tmpfs that fills up.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s)", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	clk := newClock()
	x := openQuiet(t, filepath.Join(mnt, "index"), func(c *Config) { c.Now = clk.Now; c.DegradedRetry = time.Second })
	// Fill the disk with other users' indexes.
	var filler []string
	for i := 0; ; i++ {
		u := fmt.Sprintf("filler%d", i)
		m := x.NewMailbox(u, "INBOX", 1)
		for uid := uint32(1); uid <= 20; uid++ {
			m.Upsert(makeRecord(uid))
		}
		err := m.Save(spoolN(1))
		m.Close()
		filler = append(filler, u)
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling: %v", err)
			}
			break
		}
		if i > 1000 {
			t.Fatal("the tmpfs never filled")
		}
	}
	if !x.Degraded() {
		t.Fatal("not degraded on a full disk")
	}
	// Leave a little room, so that the session's first saves work and
	// later ones hit the full disk.
	if err := x.RemoveUser(filler[0]); err != nil {
		t.Fatal(err)
	}
	filler = filler[1:]
	clk.Add(2 * time.Second)
	// A session on the full disk: every Save may fail, memory stays right,
	// and nothing on disk disagrees with it.
	m := x.NewMailbox("alice", "INBOX", 1234)
	s := &session{t: t, x: x, m: m, next: 1}
	defer m.Close()
	failed := 0
	for i := 0; i < 40; i++ {
		err := s.step()
		if err != nil && !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, ErrDegraded) {
			t.Fatalf("step %d: %v", i, err)
		}
		if err != nil {
			failed++
		}
		s.check(fmt.Sprintf("full disk step %d", i))
		clk.Add(2 * time.Second)
	}
	t.Logf("%d of 40 saves failed on the full disk; stats %+v", failed, x.Stats())
	if failed == 0 || failed == 40 || x.Stats().WriteErrors < 2 {
		t.Errorf("write errors not counted: %+v", x.Stats())
	}
	// Free the space: the session's index is written again.
	for _, u := range filler {
		if err := x.RemoveUser(u); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(2 * time.Second)
	if err := s.step(); err != nil {
		t.Fatalf("Save after space was freed: %v", err)
	}
	if x.Degraded() {
		t.Error("still degraded")
	}
	m2, err := x.LoadMailbox("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if !stateOf(m2).equal(stateOf(m)) {
		t.Fatal("state after the disk emptied differs")
	}
	if entries, _ := filepath.Glob(filepath.Join(mnt, "index", "*", "*", ".tmp-*")); len(entries) > 0 {
		t.Errorf("temporary files left: %v", entries)
	}
}
