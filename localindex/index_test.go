package localindex

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err == nil {
		t.Fatal("config without Dir accepted")
	}
	c.Dir = t.TempDir()
	if err := c.Validate(); err != nil {
		t.Fatalf("default config with Dir: %v", err)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.Budget = -1 },
		func(c *Config) { c.EvictTarget = 1.5 },
		func(c *Config) { c.DegradedRetry = -time.Second },
		func(c *Config) { c.CompactBytes = -1 },
	} {
		c2 := c
		bad(&c2)
		if err := c2.Validate(); err == nil {
			t.Errorf("bad config accepted: %+v", c2)
		}
		if _, err := Open(c2, nil); err == nil {
			t.Errorf("Open accepted bad config: %+v", c2)
		}
	}
}

func TestSpoolStateEqual(t *testing.T) {
	var zero SpoolState
	if zero.Equal(zero) {
		t.Error("unknown state equals itself")
	}
	if !spoolN(1).Equal(spoolN(1)) || spoolN(1).Equal(spoolN(2)) {
		t.Error("Equal is wrong")
	}
	if TimeNano(time.Time{}) != 0 || TimeNano(time.Unix(5, 6)) != 5_000_000_006 {
		t.Error("TimeNano is wrong")
	}
}

func TestSummaryRoundTrip(t *testing.T) {
	clk := newClock()
	x := openTest(t, t.TempDir(), func(c *Config) { c.Now = clk.Now })
	if _, err := x.LoadSummary("alice", "INBOX"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LoadSummary of nothing: %v", err)
	}
	want := Summary{Spool: spoolN(3), UIDValidity: 17, UIDNext: 99, Messages: 50, Unseen: 7, Recent: 2, Deleted: 4, Size: 123456, DeletedSize: 3456}
	if err := x.StoreSummary("alice", "INBOX", &want); err != nil {
		t.Fatal(err)
	}
	got, err := x.LoadSummary("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Updated.Equal(clk.Now()) {
		t.Errorf("Updated %v, want %v", got.Updated, clk.Now())
	}
	got.Updated = want.Updated
	if *got != want {
		t.Errorf("got %+v, want %+v", *got, want)
	}
	// Other users and mailboxes see nothing.
	for _, um := range [][2]string{{"bob", "INBOX"}, {"alice", "Sent"}, {"alice", "inbox"}} {
		if _, err := x.LoadSummary(um[0], um[1]); !errors.Is(err, ErrNotFound) {
			t.Errorf("LoadSummary(%q, %q): %v", um[0], um[1], err)
		}
	}
	// A file of another user at this user's path is foreign: discarded.
	src := filepath.Join(x.userDir("alice"), mailboxBase("INBOX")+extSummary)
	dst := filepath.Join(x.userDir("bob"), mailboxBase("INBOX")+extSummary)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(src)
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := x.LoadSummary("bob", "INBOX"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("foreign summary: %v", err)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("foreign summary not removed: %v", err)
	}
	st := x.Stats()
	if st.SummaryHits != 1 || st.Corrupt != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestMailboxRoundTrip(t *testing.T) {
	x := openTest(t, t.TempDir(), nil)
	if _, err := x.LoadMailbox("alice", "INBOX"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LoadMailbox of nothing: %v", err)
	}
	m := fillMailbox(t, x, "alice", "INBOX", 50)
	// An unparsed record and one without a date.
	m.Upsert(Record{UID: 60, File: "x.y.z", Flags: FlagDraft | FlagUser})
	r := makeRecord(61)
	r.InternalDate = time.Time{}
	r.Envelope, r.BodyStructure = nil, nil
	m.Upsert(r)
	if err := m.Save(spoolN(1)); err != nil {
		t.Fatal(err)
	}
	want := stateOf(m)
	m.Close()

	m2, err := x.LoadMailbox("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if got := stateOf(m2); !got.equal(want) {
		t.Fatalf("loaded state differs:\n got %+v\nwant %+v", got, want)
	}
	if rec, ok := m2.Lookup(25); !ok || !recordsEqual(rec, makeRecord(25)) {
		t.Errorf("Lookup(25) = %+v, %v", rec, ok)
	}
	if _, ok := m2.Lookup(55); ok {
		t.Error("Lookup of a missing UID succeeded")
	}
	r14 := makeRecord(14)
	if rec, ok := m2.ByUnique(r14.Unique()); !ok || rec.UID != 14 {
		t.Errorf("ByUnique = %+v, %v", rec, ok)
	}
	sum, err := x.LoadSummary("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	ms := m2.Summary()
	ms.Updated = sum.Updated
	if *sum != ms || sum.Messages != 52 || sum.Size != -1 || sum.UIDNext != 51 || !sum.Spool.Equal(spoolN(1)) {
		t.Errorf("summary %+v, mailbox says %+v", *sum, ms)
	}
}

// TestIncremental checks that small changes go to the log, that every
// saved state loads back, and that a long log is compacted.
func TestIncremental(t *testing.T) {
	x := openTest(t, t.TempDir(), func(c *Config) { c.CompactBytes = 16 << 10 })
	m := fillMailbox(t, x, "alice", "INBOX", 200)
	defer m.Close()
	base := x.Stats()
	for i := 1; i <= 100; i++ {
		uid := uint32(i)
		rec, _ := m.Lookup(uid)
		if !m.SetFlags(uid, rec.Unique()+":2,FS", false, FlagSeen|FlagFlagged, []string{"kw"}) {
			t.Fatalf("SetFlags(%d) found nothing", uid)
		}
		if i%10 == 0 {
			m.Remove(uid + 100)
		}
		if i%20 == 0 {
			m.Remove(150, 151, 152, 153, 154, 155, 156, 157, 158, 159) // the bulk path
		}
		m.Upsert(makeRecord(uint32(1000 + i)))
		m.SetUIDNext(uint32(1001 + i))
		if err := m.Save(spoolN(int64(i))); err != nil {
			t.Fatal(err)
		}
		if got, want := m.Summary(), bruteSummary(m); got != want {
			t.Fatalf("after save %d: Summary %+v, computed %+v", i, got, want)
		}
		if i%7 == 0 {
			m2, err := x.LoadMailbox("alice", "INBOX")
			if err != nil {
				t.Fatal(err)
			}
			if !stateOf(m2).equal(stateOf(m)) {
				t.Fatalf("after save %d the loaded state differs", i)
			}
			if got, want := m2.Summary(), bruteSummary(m2); got != want {
				t.Fatalf("loaded: Summary %+v, computed %+v", got, want)
			}
			m2.Close()
		}
	}
	st := x.Stats()
	if st.LogAppends-base.LogAppends < 50 {
		t.Errorf("only %d log appends", st.LogAppends-base.LogAppends)
	}
	if st.Compactions-base.Compactions < 1 {
		t.Errorf("log never compacted: %+v", st)
	}
	if fi, err := os.Stat(m.base + extLog); err == nil && fi.Size() > 16<<10 {
		t.Errorf("log has %d bytes, above CompactBytes", fi.Size())
	}
	// Save without changes writes nothing.
	w := x.Stats().Writes
	if err := m.Save(m.Spool()); err != nil {
		t.Fatal(err)
	}
	if x.Stats().Writes != w {
		t.Error("Save without changes wrote")
	}
	// Reset drops everything.
	m.Reset(999)
	m.Upsert(makeRecord(1))
	if err := m.Save(spoolN(500)); err != nil {
		t.Fatal(err)
	}
	m2, err := x.LoadMailbox("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if m2.UIDValidity() != 999 || m2.Len() != 1 {
		t.Errorf("after Reset: uidvalidity %d, %d records", m2.UIDValidity(), m2.Len())
	}
}

// TestTwoSessions: two Mailboxes of one mailbox saving in turn. Whatever
// loads must equal the last saver's state: never a mix.
func TestTwoSessions(t *testing.T) {
	x := openTest(t, t.TempDir(), nil)
	fillMailbox(t, x, "alice", "INBOX", 20).Close()
	a, err := x.LoadMailbox("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := x.LoadMailbox("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := 1; i <= 10; i++ {
		who := a
		if i%2 == 0 {
			who = b
		}
		rec, _ := who.Lookup(uint32(i))
		who.SetFlags(uint32(i), rec.File, rec.InNew, rec.Flags^FlagSeen, nil)
		who.Upsert(makeRecord(uint32(100 + i)))
		if err := who.Save(spoolN(int64(i))); err != nil {
			t.Fatal(err)
		}
		got, err := x.LoadMailbox("alice", "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		if !stateOf(got).equal(stateOf(who)) {
			t.Fatalf("round %d: loaded state is not the last saver's", i)
		}
		got.Close()
	}
}

func TestClosed(t *testing.T) {
	x := openTest(t, t.TempDir(), nil)
	m := fillMailbox(t, x, "alice", "INBOX", 3)
	m.Close()
	m.Close()
	if err := m.Save(spoolN(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Save after Close: %v", err)
	}
}

func TestRemoveMailboxAndUser(t *testing.T) {
	x := openTest(t, t.TempDir(), nil)
	fillMailbox(t, x, "alice", "INBOX", 3).Close()
	fillMailbox(t, x, "alice", "Sent", 3).Close()
	if err := x.RemoveMailbox("alice", "Sent"); err != nil {
		t.Fatal(err)
	}
	if _, err := x.LoadMailbox("alice", "Sent"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removed mailbox loads: %v", err)
	}
	if _, err := x.LoadSummary("alice", "Sent"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removed summary loads: %v", err)
	}
	if err := x.RemoveUser("alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := x.LoadMailbox("alice", "INBOX"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removed user loads: %v", err)
	}
}

// TestOddNames: user and mailbox names that are unsafe as paths.
func TestOddNames(t *testing.T) {
	x := openTest(t, t.TempDir(), nil)
	for _, u := range []string{"../../etc", "a/b", "", "ü\x00x", string(make([]byte, 5000))} {
		if err := x.StoreSummary(u, "../x", &Summary{Spool: spoolN(1), Messages: 1}); err != nil {
			t.Fatalf("%q: %v", u, err)
		}
		s, err := x.LoadSummary(u, "../x")
		if err != nil || s.Messages != 1 {
			t.Fatalf("%q: %+v %v", u, s, err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(x.cfg.Dir)); len(entries) != 1 {
		t.Errorf("files written outside the root: %v", entries)
	}
}

// TestOldSummaryDiscarded: a summary written by the previous format
// (version 3, without the \Deleted count and size) is corrupt to this
// one: removed and reported, so that STATUS computes it from the spool.
func TestOldSummaryDiscarded(t *testing.T) {
	x := openTest(t, t.TempDir(), nil)
	if err := x.StoreSummary("alice", "INBOX", &Summary{Spool: spoolN(1), UIDValidity: 5, UIDNext: 10, Messages: 9, Unseen: 2, Size: 4000}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(x.userDir("alice"), mailboxBase("INBOX")+extSummary)
	// The version 3 layout, framed and checksummed as that version did.
	b := frameStart(nil, magicSummary)
	binary.LittleEndian.PutUint16(b[8:10], 3)
	b = appendStr(b, "alice")
	b = appendStr(b, "INBOX")
	b = appendSpool(b, spoolN(1))
	for _, v := range []uint64{5, 10, 9, 2, 0} { // UIDVALIDITY, UIDNEXT, MESSAGES, UNSEEN, RECENT
		b = binary.AppendUvarint(b, v)
	}
	b = binary.AppendVarint(b, 4000)
	b = binary.AppendVarint(b, 1)
	b = frameFinish(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := x.LoadSummary("alice", "INBOX"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("version 3 summary: %+v, %v; want ErrCorrupt", s, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("version 3 summary not removed: %v", err)
	}
}

// TestSummaryDeletedCounts: the \Deleted count and size follow flag
// changes, expunges and unparsed records.
func TestSummaryDeletedCounts(t *testing.T) {
	x := openTest(t, t.TempDir(), nil)
	m := x.NewMailbox("alice", "INBOX", 1)
	for uid := uint32(1); uid <= 4; uid++ {
		r := makeRecord(uid)
		if uid%2 == 0 {
			r.Flags |= FlagDeleted
		}
		m.Upsert(r)
	}
	check := func(what string, deleted uint32, deletedSize int64) {
		t.Helper()
		got, want := m.Summary(), bruteSummary(m)
		if got != want {
			t.Fatalf("%s: Summary %+v, computed %+v", what, got, want)
		}
		if got.Deleted != deleted || got.DeletedSize != deletedSize {
			t.Fatalf("%s: Deleted %d size %d, want %d %d", what, got.Deleted, got.DeletedSize, deleted, deletedSize)
		}
	}
	size := makeRecord(2).Size + makeRecord(4).Size
	check("two deleted", 2, size)
	r := m.Records()[0]
	m.SetFlags(r.UID, r.File, r.InNew, r.Flags|FlagDeleted, nil)
	check("one more deleted", 3, size+makeRecord(1).Size)
	m.Remove(2)
	check("one expunged", 2, makeRecord(1).Size+makeRecord(4).Size)
	un := makeRecord(5)
	un.Parsed, un.Flags = false, FlagDeleted
	m.Upsert(un)
	check("an unparsed one", 3, -1)
	if err := m.Save(spoolN(2)); err != nil {
		t.Fatal(err)
	}
	s, err := x.LoadSummary("alice", "INBOX")
	if err != nil || s.Deleted != 3 || s.DeletedSize != -1 {
		t.Fatalf("stored summary %+v, %v", s, err)
	}
}
