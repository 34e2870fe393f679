package maildir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

func testOptions(t testing.TB) Options {
	opt := DefaultOptions()
	opt.Lock.Timeout = 20 * time.Second
	opt.Host = "test.host"
	opt.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return opt
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newTestStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := New(Paths{Inbox: dir}, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustMailbox(t testing.TB, s *Store, name string) *Mailbox {
	t.Helper()
	m, err := s.Mailbox(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustSync(t testing.TB, m *Mailbox, opt SyncOptions) *Snapshot {
	t.Helper()
	snap, err := m.Sync(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func uidsOf(s *Snapshot) []uint32 {
	var u []uint32
	for _, m := range s.Messages {
		u = append(u, m.UID)
	}
	return u
}

func readMsg(t testing.TB, m *Mailbox, uid uint32) string {
	t.Helper()
	f, _, err := m.Open(context.Background(), uid)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeRaw drops a file into the maildir as another program would, with
// the given mtime.
func writeRaw(t testing.TB, dir, rel, body string, mtime time.Time) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeliverSyncFlagsExpunge(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := time.Now()
	opt := testOptions(t)
	opt.Now = func() time.Time { return clock }
	s, err := New(Paths{Inbox: dir}, opt)
	if err != nil {
		t.Fatal(err)
	}
	m := mustMailbox(t, s, "INBOX")
	base := time.Unix(1700000000, 0)
	// Delivered out of name order: UIDs follow mtime.
	writeRaw(t, dir, "new/zzz.first", "first\n", base)
	writeRaw(t, dir, "new/aaa.second", "second\n", base.Add(time.Second))
	writeRaw(t, dir, "cur/mmm.third:2,S", "third\n", base.Add(2*time.Second))
	snap := mustSync(t, m, SyncOptions{})
	if got := uidsOf(snap); fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("uids %v", got)
	}
	if snap.Messages[0].File != "zzz.first" || !snap.Messages[0].InNew || snap.Messages[2].Flags != FlagSeen {
		t.Fatalf("%+v", snap.Messages)
	}
	if snap.UIDValidity == 0 || snap.UIDNext != 4 {
		t.Fatalf("uidvalidity %d next %d", snap.UIDValidity, snap.UIDNext)
	}
	data, err := os.ReadFile(filepath.Join(dir, UidlistName))
	if err != nil || !strings.HasPrefix(string(data), "3 V") || !strings.Contains(string(data), "\n1 :zzz.first\n2 :aaa.second\n3 :mmm.third\n") {
		t.Fatalf("uidlist %q %v", data, err)
	}

	// A read-write SELECT moves new/ to cur/; UIDs stay.
	snap = mustSync(t, m, SyncOptions{MoveNew: true})
	if fmt.Sprint(snap.MovedFromNew) != "[1 2]" || snap.Messages[0].File != "zzz.first:2," || snap.Messages[0].InNew {
		t.Fatalf("%+v %+v", snap.MovedFromNew, snap.Messages)
	}
	if _, err := os.Stat(filepath.Join(dir, "cur", "zzz.first:2,")); err != nil {
		t.Fatal(err)
	}

	// Flags by rename.
	msg, err := m.Store(ctx, 1, FlagsAdd, FlagSeen|FlagFlagged, nil)
	if err != nil || msg.File != "zzz.first:2,FS" {
		t.Fatalf("%+v %v", msg, err)
	}
	msg, err = m.Store(ctx, 1, FlagsRemove, FlagFlagged, nil)
	if err != nil || msg.File != "zzz.first:2,S" {
		t.Fatalf("%+v %v", msg, err)
	}
	msg, err = m.Store(ctx, 3, FlagsSet, FlagTrashed, []string{"$Junk", "Work"})
	if err != nil || msg.File != "mmm.third:2,Tab" || fmt.Sprint(msg.Keywords) != "[$Junk Work]" {
		t.Fatalf("%+v %v", msg, err)
	}
	if kw, _ := os.ReadFile(filepath.Join(dir, KeywordsName)); string(kw) != "0 $Junk\n1 Work\n" {
		t.Fatalf("keywords %q", kw)
	}

	// A second handle (another node) sees the same UIDs and flags.
	other := mustMailbox(t, newTestStore(t, dir), "INBOX")
	snap2 := mustSync(t, other, SyncOptions{})
	if fmt.Sprint(uidsOf(snap2)) != "[1 2 3]" || snap2.Messages[2].Flags != FlagTrashed || fmt.Sprint(snap2.Messages[2].Keywords) != "[$Junk Work]" {
		t.Fatalf("%+v", snap2.Messages)
	}

	// Expunge; a second expunge of the same UID is fine.
	gone, err := m.Expunge(ctx, []uint32{3})
	if err != nil || fmt.Sprint(gone) != "[3]" {
		t.Fatalf("%v %v", gone, err)
	}
	if gone, err := other.Expunge(ctx, []uint32{3}); err != nil || fmt.Sprint(gone) != "[3]" {
		t.Fatalf("other: %v %v", gone, err)
	}
	if _, err := m.Store(ctx, 3, FlagsAdd, FlagSeen, nil); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("store on expunged: %v", err)
	}

	// UIDs are never reused.
	uid, err := m.Append(ctx, strings.NewReader("appended\n"), AppendOptions{Flags: FlagSeen})
	if err != nil || uid != 4 {
		t.Fatalf("append uid %d %v", uid, err)
	}
	if _, err := m.Expunge(ctx, []uint32{4}); err != nil {
		t.Fatal(err)
	}
	uid, err = m.Append(ctx, strings.NewReader("again\n"), AppendOptions{Keywords: []string{"work"}})
	if err != nil || uid != 5 {
		t.Fatalf("append uid %d %v", uid, err)
	}
	if got := readMsg(t, other, 5); got != "again\n" {
		t.Fatalf("read %q", got)
	}
	snap = mustSync(t, m, SyncOptions{})
	if fmt.Sprint(uidsOf(snap)) != "[1 2 5]" || snap.UIDNext != 6 {
		t.Fatalf("%v next %d", uidsOf(snap), snap.UIDNext)
	}
	if last := snap.Messages[2]; fmt.Sprint(last.Keywords) != "[Work]" || last.Name.Size != 6 || last.Name.VSize != 7 {
		t.Fatalf("%+v", last)
	}
	// The records of expunged files stay for ExpungeGrace (another node's
	// cached listing may still show the file) ...
	data, _ = os.ReadFile(filepath.Join(dir, UidlistName))
	if !strings.Contains(string(data), "mmm.third") {
		t.Fatalf("expunged record dropped at once:\n%s", data)
	}
	// ... and are dropped at the first rewrite after it.
	clock = clock.Add(2 * time.Minute)
	if _, err := m.Append(ctx, strings.NewReader("third\n"), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(filepath.Join(dir, UidlistName))
	if strings.Contains(string(data), "mmm.third") || !strings.Contains(string(data), "\n5 :") {
		t.Fatalf("expunged record kept:\n%s", data)
	}
}

func TestStoreAfterForeignRename(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := mustMailbox(t, newTestStore(t, dir), "INBOX")
	b := mustMailbox(t, newTestStore(t, dir), "INBOX")
	uid, err := a.Append(ctx, strings.NewReader("x\n"), AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, b, SyncOptions{})
	// b renames behind a's back; a's view is stale.
	if _, err := b.Store(ctx, uid, FlagsAdd, FlagFlagged, nil); err != nil {
		t.Fatal(err)
	}
	msg, err := a.Store(ctx, uid, FlagsAdd, FlagSeen, nil)
	if err != nil || msg.Flags != FlagFlagged|FlagSeen {
		t.Fatalf("%+v %v", msg, err)
	}
	// Open through a stale view.
	if _, err := b.Store(ctx, uid, FlagsAdd, FlagReplied, nil); err != nil {
		t.Fatal(err)
	}
	f, msg, err := a.Open(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if msg.Flags != FlagFlagged|FlagSeen|FlagReplied {
		t.Fatalf("%+v", msg)
	}
	// Expunged by b: a's Open says ErrNoMessage.
	if _, err := b.Expunge(ctx, []uint32{uid}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Open(ctx, uid); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("open expunged: %v", err)
	}
	if gone, err := a.Expunge(ctx, []uint32{uid}); err != nil || len(gone) != 0 {
		t.Fatalf("%v %v", gone, err)
	}
}

func TestCleanTmp(t *testing.T) {
	dir := t.TempDir()
	m := mustMailbox(t, newTestStore(t, dir), "INBOX")
	old := time.Now().Add(-40 * time.Hour)
	writeRaw(t, dir, "tmp/old", "x", old)
	writeRaw(t, dir, "tmp/fresh", "y", time.Time{})
	writeRaw(t, dir, "new/msg", "z", time.Time{})
	// tmp/ was listed a moment ago (its atime): no scan now.
	now := time.Now()
	if err := os.Chtimes(filepath.Join(dir, "tmp"), now, now); err != nil {
		t.Fatal(err)
	}
	mustSync(t, m, SyncOptions{})
	if _, err := os.Stat(filepath.Join(dir, "tmp/old")); err != nil {
		t.Fatalf("tmp/ scanned although its atime is fresh: %v", err)
	}
	// No scan for two hours: the next sync (of a new handle of another
	// Store, since a Store scans once an hour) removes the old file.
	if err := os.Chtimes(filepath.Join(dir, "tmp"), now.Add(-2*time.Hour), now); err != nil {
		t.Fatal(err)
	}
	writeRaw(t, dir, "new/msg2", "w", time.Time{})
	m = mustMailbox(t, newTestStore(t, dir), "INBOX")
	mustSync(t, m, SyncOptions{})
	if _, err := os.Stat(filepath.Join(dir, "tmp/old")); !os.IsNotExist(err) {
		t.Fatalf("old tmp file kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tmp/fresh")); err != nil {
		t.Fatal(err)
	}
}

func TestMovedBetweenListings(t *testing.T) {
	// The same unique part in new/ at one sync and in cur/ at the next is
	// the same message.
	dir := t.TempDir()
	m := mustMailbox(t, newTestStore(t, dir), "INBOX")
	writeRaw(t, dir, "new/u1", "x", time.Time{})
	s1 := mustSync(t, m, SyncOptions{})
	if err := os.Rename(filepath.Join(dir, "new/u1"), filepath.Join(dir, "cur/u1:2,S")); err != nil {
		t.Fatal(err)
	}
	s2 := mustSync(t, m, SyncOptions{})
	if fmt.Sprint(uidsOf(s1)) != "[1]" || fmt.Sprint(uidsOf(s2)) != "[1]" || s2.Messages[0].Flags != FlagSeen {
		t.Fatalf("%+v %+v", s1.Messages, s2.Messages)
	}
}

func TestDuplicateUniquePart(t *testing.T) {
	dir := t.TempDir()
	m := mustMailbox(t, newTestStore(t, dir), "INBOX")
	// A crash between link and unlink: one inode, two names.
	writeRaw(t, dir, "cur/dup1:2,S", "one", time.Time{})
	if err := os.Link(filepath.Join(dir, "cur/dup1:2,S"), filepath.Join(dir, "new/dup1")); err != nil {
		t.Fatal(err)
	}
	// Two different files claiming one unique part.
	writeRaw(t, dir, "cur/dup2:2,", "two-a", time.Time{})
	writeRaw(t, dir, "cur/dup2:2,F", "two-b", time.Time{})
	snap := mustSync(t, m, SyncOptions{})
	if len(snap.Messages) != 3 {
		t.Fatalf("%+v", snap.Messages)
	}
	// Both names of one inode stay (removing either could hit the only
	// real name on NFS); they are one message.
	var bodies []string
	for _, msg := range snap.Messages {
		bodies = append(bodies, readMsg(t, m, msg.UID))
	}
	sort.Strings(bodies)
	if fmt.Sprint(bodies) != "[one two-a two-b]" {
		t.Fatalf("%v", bodies)
	}
	// Expunging the message with two names removes both.
	for _, msg := range snap.Messages {
		if msg.Name.Unique == "dup1" {
			if _, err := m.Expunge(context.Background(), []uint32{msg.UID}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range []string{"new/dup1", "cur/dup1:2,S"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", p, err)
		}
	}
	if snap := mustSync(t, m, SyncOptions{}); len(snap.Messages) != 2 {
		t.Fatalf("%+v", snap.Messages)
	}
}

func TestUWImportAndDovecotUidlist(t *testing.T) {
	t.Run("uw", func(t *testing.T) {
		dir := t.TempDir()
		writeRaw(t, dir, "cur/100.a.host:2,S,U7", "a", time.Unix(3, 0))
		writeRaw(t, dir, "cur/101.b.host,U=3:2,", "b", time.Unix(2, 0))
		writeRaw(t, dir, "new/102.c.host", "c", time.Unix(1, 0))
		m := mustMailbox(t, newTestStore(t, dir), "INBOX")
		snap := mustSync(t, m, SyncOptions{})
		got := map[string]uint32{}
		for _, msg := range snap.Messages {
			got[msg.Name.Unique] = msg.UID
		}
		if got["100.a.host"] != 7 || got["101.b.host,U=3"] != 3 || got["102.c.host"] != 8 || snap.UIDNext != 9 {
			t.Fatalf("%v next %d", got, snap.UIDNext)
		}
	})
	t.Run("courier", func(t *testing.T) {
		dir := t.TempDir()
		writeRaw(t, dir, CourierUIDDBName, "1 1111 20\n7 100.a.host:2,S\n12 101.b.host\n", time.Time{})
		writeRaw(t, dir, "cur/100.a.host:2,S", "a", time.Unix(2, 0))
		writeRaw(t, dir, "cur/101.b.host:2,", "b", time.Unix(1, 0))
		writeRaw(t, dir, "new/102.c.host", "c", time.Time{})
		m := mustMailbox(t, newTestStore(t, dir), "INBOX")
		snap := mustSync(t, m, SyncOptions{})
		if fmt.Sprint(uidsOf(snap)) != "[7 12 20]" || snap.UIDValidity != 1111 || snap.UIDNext != 21 {
			t.Fatalf("%+v", snap)
		}
	})
	t.Run("dovecot-v1", func(t *testing.T) {
		dir := t.TempDir()
		writeRaw(t, dir, UidlistName, uidlistV1, time.Time{})
		writeRaw(t, dir, "cur/1234567000.M1P1.host:2,S", "a", time.Time{})
		writeRaw(t, dir, "cur/1234567002.M3P1.host:2,RS", "c", time.Time{})
		writeRaw(t, dir, "new/1234567009.M9P1.host", "new", time.Time{})
		m := mustMailbox(t, newTestStore(t, dir), "INBOX")
		snap := mustSync(t, m, SyncOptions{})
		if fmt.Sprint(uidsOf(snap)) != "[1 4 5]" || snap.UIDValidity != 1234567890 || snap.Messages[1].Flags != FlagReplied|FlagSeen {
			t.Fatalf("%+v", snap)
		}
		data, _ := os.ReadFile(filepath.Join(dir, UidlistName))
		if !strings.HasPrefix(string(data), "3 V1234567890 N6 G") {
			t.Fatalf("%s", data)
		}
	})
	t.Run("dovecot-v3", func(t *testing.T) {
		dir := t.TempDir()
		writeRaw(t, dir, UidlistName, uidlistV3, time.Time{})
		writeRaw(t, dir, "cur/1700000002.M11P20.mail,S=1234,W=1300:2,S", "b", time.Time{})
		m := mustMailbox(t, newTestStore(t, dir), "INBOX")
		snap := mustSync(t, m, SyncOptions{})
		if fmt.Sprint(uidsOf(snap)) != "[5]" || snap.UIDNext != 12 {
			t.Fatalf("%+v", snap)
		}
		// Nothing new: the uidlist is not rewritten.
		data, _ := os.ReadFile(filepath.Join(dir, UidlistName))
		if string(data) != uidlistV3 {
			t.Fatalf("rewritten: %s", data)
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		dir := t.TempDir()
		writeRaw(t, dir, UidlistName, "garbage\n", time.Time{})
		writeRaw(t, dir, "cur/a:2,", "a", time.Time{})
		m := mustMailbox(t, newTestStore(t, dir), "INBOX")
		snap := mustSync(t, m, SyncOptions{})
		if fmt.Sprint(uidsOf(snap)) != "[1]" {
			t.Fatalf("%+v", snap)
		}
		if _, err := ParseUidlist(mustRead(t, filepath.Join(dir, UidlistName))); err != nil {
			t.Fatal(err)
		}
	})
}

var zeroTime time.Time

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCopyMove(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := newTestStore(t, dir)
	if err := s.Create(ctx, "Archive"); err != nil {
		t.Fatal(err)
	}
	in := mustMailbox(t, s, "INBOX")
	arch := mustMailbox(t, s, "Archive")
	date := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	var uids []uint32
	for i := 0; i < 3; i++ {
		uid, err := in.Append(ctx, strings.NewReader(fmt.Sprintf("msg %d\n", i)), AppendOptions{Flags: FlagSeen, Keywords: []string{fmt.Sprintf("k%d", i)}, Date: date})
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, uid)
	}
	// Give Archive a keyword first so the letters differ.
	if _, err := arch.Append(ctx, strings.NewReader("own\n"), AppendOptions{Keywords: []string{"other"}}); err != nil {
		t.Fatal(err)
	}
	res, err := in.Copy(ctx, []uint32{uids[2], uids[0]}, arch)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res) != fmt.Sprint([]CopyResult{{uids[2], 2}, {uids[0], 3}}) {
		t.Fatalf("%v", res)
	}
	snap := mustSync(t, arch, SyncOptions{})
	m2, _ := snap.Lookup(2)
	if m2.Flags != FlagSeen || fmt.Sprint(m2.Keywords) != "[k2]" || readMsg(t, arch, 2) != "msg 2\n" {
		t.Fatalf("%+v", m2)
	}
	f, _, err := arch.Open(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	f.Close()
	if !st.ModTime().Equal(date) {
		t.Fatalf("internal date %v", st.ModTime())
	}
	// Copy into the same mailbox.
	res, err = in.Copy(ctx, []uint32{uids[1]}, in)
	if err != nil || len(res) != 1 || res[0].DstUID != 4 {
		t.Fatalf("%v %v", res, err)
	}
	// Move.
	res, err = in.Move(ctx, []uint32{uids[0], 99}, arch)
	if err != nil || len(res) != 1 || res[0].DstUID != 4 {
		t.Fatalf("%v %v", res, err)
	}
	if snap := mustSync(t, in, SyncOptions{}); fmt.Sprint(uidsOf(snap)) != "[2 3 4]" {
		t.Fatalf("%v", uidsOf(snap))
	}
	// The byte-copy path (used on EXDEV) keeps content and date.
	target := filepath.Join(arch.dir, "cur", "bytecopy:2,S")
	src := filepath.Join(in.dir, "cur", mustSync(t, in, SyncOptions{}).Messages[0].File)
	if err := in.copyBytes(ctx, src, arch, target); err != nil {
		t.Fatal(err)
	}
	if b := mustRead(t, target); string(b) != "msg 1\n" {
		t.Fatalf("%q", b)
	}
	if st, _ := os.Stat(target); !st.ModTime().Equal(date) {
		t.Fatalf("date %v", st.ModTime())
	}
}

func TestSizes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	m := mustMailbox(t, newTestStore(t, dir), "INBOX")
	writeRaw(t, dir, "cur/plain:2,", "a\nb\r\nc\n", time.Time{})
	uid, err := m.Append(ctx, strings.NewReader("x\ny\n"), AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	snap := mustSync(t, m, SyncOptions{})
	p, r, err := m.Sizes(ctx, snap.Messages[0].UID)
	if err != nil || p != 7 || r != 9 {
		t.Fatalf("%d %d %v", p, r, err)
	}
	p, r, err = m.Sizes(ctx, uid)
	if err != nil || p != 4 || r != 6 {
		t.Fatalf("%d %d %v", p, r, err)
	}
	// CR at a buffer boundary.
	n, err := RFC822Size(io.MultiReader(strings.NewReader("a\r"), strings.NewReader("\nb\n")))
	if err != nil || n != 6 {
		t.Fatalf("%d %v", n, err)
	}
}

func TestStamp(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	m := mustMailbox(t, newTestStore(t, dir), "INBOX")
	snap := mustSync(t, m, SyncOptions{})
	st, err := m.Stamp(ctx)
	if err != nil || !st.Equal(snap.Stamp) {
		t.Fatalf("%+v %+v %v", st, snap.Stamp, err)
	}
	if _, err := m.Append(ctx, strings.NewReader("x"), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	st2, _ := m.Stamp(ctx)
	if st2.Equal(snap.Stamp) {
		t.Fatal("stamp unchanged after append")
	}
}

func TestTooManyKeywords(t *testing.T) {
	ctx := context.Background()
	m := mustMailbox(t, newTestStore(t, t.TempDir()), "INBOX")
	uid, err := m.Append(ctx, strings.NewReader("x"), AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var kws []string
	for i := 0; i < MaxKeywords; i++ {
		kws = append(kws, fmt.Sprintf("kw%d", i))
	}
	msg, err := m.Store(ctx, uid, FlagsAdd, 0, kws)
	if err != nil || len(msg.Keywords) != MaxKeywords {
		t.Fatalf("%+v %v", msg, err)
	}
	if _, err := m.Store(ctx, uid, FlagsAdd, 0, []string{"one-more"}); !errors.Is(err, ErrTooManyKeywords) {
		t.Fatalf("%v", err)
	}
	if _, err := m.Store(ctx, uid, FlagsAdd, 0, []string{"bad keyword"}); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("%v", err)
	}
}

func TestHardLinkDupDoesNotRewrite(t *testing.T) {
	dir := t.TempDir()
	m := mustMailbox(t, newTestStore(t, dir), "INBOX")
	writeRaw(t, dir, "cur/d:2,S", "x", time.Time{})
	if err := os.Link(filepath.Join(dir, "cur/d:2,S"), filepath.Join(dir, "new/d")); err != nil {
		t.Fatal(err)
	}
	mustSync(t, m, SyncOptions{})
	st1, _ := os.Stat(filepath.Join(dir, UidlistName))
	snap := mustSync(t, m, SyncOptions{})
	st2, _ := os.Stat(filepath.Join(dir, UidlistName))
	if len(snap.Messages) != 1 || !os.SameFile(st1, st2) {
		t.Fatalf("rewritten or doubled: %+v", snap.Messages)
	}
}

func TestSyncIfChanged(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := time.Now()
	opt := testOptions(t)
	opt.Now = func() time.Time { return clock }
	s, err := New(Paths{Inbox: dir}, opt)
	if err != nil {
		t.Fatal(err)
	}
	m := mustMailbox(t, s, "INBOX")
	if _, err := m.Append(ctx, strings.NewReader("x"), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	s1 := mustSync(t, m, SyncOptions{})
	// Within two seconds of the last change: always a real sync.
	if s2 := mustSync(t, m, SyncOptions{IfChanged: true}); s2 == s1 || len(s2.Messages) != 1 {
		t.Fatal("not synced")
	}
	clock = clock.Add(5 * time.Second)
	s3 := mustSync(t, m, SyncOptions{IfChanged: true})
	s4 := mustSync(t, m, SyncOptions{IfChanged: true})
	if len(s4.Messages) != 1 || s4.Stamp != s3.Stamp {
		t.Fatalf("%+v", s4)
	}
	// A delivery changes new/: seen.
	if _, err := m.Deliver(ctx, strings.NewReader("y")); err != nil {
		t.Fatal(err)
	}
	if s5 := mustSync(t, m, SyncOptions{IfChanged: true}); len(s5.Messages) != 2 {
		t.Fatalf("%+v", s5.Messages)
	}
}

func TestSyncWithoutLock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opt := testOptions(t)
	opt.Lock.Timeout = 300 * time.Millisecond
	s, err := New(Paths{Inbox: dir}, opt)
	if err != nil {
		t.Fatal(err)
	}
	m := mustMailbox(t, s, "INBOX")
	if _, err := m.Append(ctx, strings.NewReader("x"), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	// Another node holds the uidlist lock (a live one: fresh mtime).
	writeRaw(t, dir, UidlistName+".lock", "otherhost:1:x\n", time.Time{})
	writeRaw(t, dir, "new/later", "y", time.Time{})
	snap, err := m.Sync(ctx, SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Messages) != 1 || snap.Stamp != (Stamp{}) {
		t.Fatalf("%+v", snap)
	}
	if _, err := m.Append(ctx, strings.NewReader("z"), AppendOptions{}); err == nil {
		t.Fatal("append without the lock worked")
	}
	if err := os.Remove(filepath.Join(dir, UidlistName+".lock")); err != nil {
		t.Fatal(err)
	}
	// The failed append left nothing behind.
	if snap := mustSync(t, m, SyncOptions{}); len(snap.Messages) != 2 {
		t.Fatalf("%+v", snap.Messages)
	}
}
