package torture

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nfsimap/nfsimap/node/maildir"
)

// checkFixture is a spool on a plain directory with one journal, for
// testing the checker itself.
type checkFixture struct {
	t      *testing.T
	inbox  string
	jpath  string
	j      *Journal
	store  *maildir.Store
	boxes  map[string]*maildir.Mailbox
	uidv   map[string]uint32
	rng    *rand.Rand
	mboxes []string
}

func newCheckFixture(t *testing.T) *checkFixture {
	t.Helper()
	dir := t.TempDir()
	f := &checkFixture{
		t: t, inbox: filepath.Join(dir, "Maildir"), jpath: filepath.Join(dir, "writer-0-0.jsonl"),
		boxes: map[string]*maildir.Mailbox{}, rng: rand.New(rand.NewPCG(1, 1)),
		mboxes: []string{"INBOX", "Archive"},
	}
	f.uidv = setupSpool(t, f.inbox, f.mboxes, 3*time.Second)
	var err error
	if f.j, err = CreateJournal(f.jpath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.j.Close() })
	if f.store, err = maildir.New(maildir.Paths{Inbox: f.inbox, Root: f.inbox}, storeOptions("test", 3*time.Second, nil)); err != nil {
		t.Fatal(err)
	}
	for _, name := range f.mboxes {
		if f.boxes[name], err = f.store.Mailbox(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *checkFixture) write(r Record) {
	f.t.Helper()
	if err := f.j.Write(r); err != nil {
		f.t.Fatal(err)
	}
}

// deliver appends a message and journals it; with done false only the
// begin record is written (an operation cut short by a kill).
func (f *checkFixture) deliver(mbox, id string, flags maildir.Flags, done bool) uint32 {
	f.t.Helper()
	state := flagState(flags, nil)
	f.write(Record{Phase: PhaseBegin, Op: OpDeliver, Mailbox: mbox, ID: id, Flags: state})
	uid, err := f.boxes[mbox].Append(context.Background(), bytes.NewReader(buildMessage(id, f.rng)), maildir.AppendOptions{Flags: flags})
	if err != nil {
		f.t.Fatal(err)
	}
	if done {
		f.write(Record{Phase: PhaseDone, Op: OpDeliver, Mailbox: mbox, ID: id, UID: uid, Flags: state})
	}
	return uid
}

func (f *checkFixture) check() *Report {
	f.t.Helper()
	rep, err := check(context.Background(), checkInput{
		Maildir: f.inbox, Mailboxes: f.mboxes, UIDValidity: f.uidv,
		Journals: []string{f.jpath}, StaleAge: 3 * time.Second,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

// file returns the path of the message with uid in mbox.
func (f *checkFixture) file(mbox string, uid uint32) string {
	f.t.Helper()
	snap, err := f.boxes[mbox].Sync(context.Background(), maildir.SyncOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	m, ok := snap.Lookup(uid)
	if !ok {
		f.t.Fatalf("UID %d not in %s", uid, mbox)
	}
	sub := "cur"
	if m.InNew {
		sub = "new"
	}
	return filepath.Join(maildirPath(f.inbox, mbox), sub, m.File)
}

func wantProblem(t *testing.T, rep *Report, substr string) {
	t.Helper()
	for _, p := range rep.Problems {
		if strings.Contains(p, substr) {
			return
		}
	}
	t.Errorf("no problem mentioning %q in %v", substr, rep)
}

func TestCheckConsistent(t *testing.T) {
	f := newCheckFixture(t)
	uid := f.deliver("INBOX", "a", maildir.FlagSeen, true)
	f.deliver("Archive", "b", 0, true)
	f.deliver("INBOX", "pending", 0, false) // begun, never done: may be there
	f.write(Record{Phase: PhaseBegin, Op: OpFlag, Mailbox: "INBOX", UID: uid, ID: "a", Flags: flagState(maildir.FlagFlagged, nil)})
	if _, err := f.boxes["INBOX"].Store(context.Background(), uid, maildir.FlagsSet, maildir.FlagFlagged, nil); err != nil {
		t.Fatal(err)
	}
	f.write(Record{Phase: PhaseDone, Op: OpFlag, Mailbox: "INBOX", UID: uid, ID: "a", Flags: flagState(maildir.FlagFlagged, nil)})
	if err := deliverProcmail(f.inbox, "1700000000.1_1.mx", buildMessage("mta0-1", f.rng)); err != nil {
		t.Fatal(err)
	}
	f.write(Record{Phase: PhaseBegin, Op: OpMTA, Mailbox: "INBOX", ID: "mta0-1"})
	f.write(Record{Phase: PhaseDone, Op: OpMTA, Mailbox: "INBOX", ID: "mta0-1"})
	rep := f.check()
	if len(rep.Problems) != 0 {
		t.Fatalf("consistent spool: %v", rep)
	}
	if rep.Messages != 4 || rep.Done[OpDeliver] != 2 || rep.Pending[OpDeliver] != 1 {
		t.Errorf("report %v", rep)
	}
}

func TestCheckFindsLostMessage(t *testing.T) {
	f := newCheckFixture(t)
	uid := f.deliver("INBOX", "a", 0, true)
	if err := os.Remove(f.file("INBOX", uid)); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, f.check(), "lost: INBOX UID")
}

func TestCheckFindsDuplicate(t *testing.T) {
	f := newCheckFixture(t)
	uid := f.deliver("INBOX", "a", 0, true)
	// A second file with the same content under another unique name.
	data, err := os.ReadFile(f.file("INBOX", uid))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.inbox, "new", "1700000000.2_2.dup"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, f.check(), "duplicate: INBOX holds 2 copies of a")
}

func TestCheckFindsWrongFlags(t *testing.T) {
	f := newCheckFixture(t)
	uid := f.deliver("INBOX", "a", maildir.FlagSeen, true)
	p := f.file("INBOX", uid)
	if err := os.Rename(p, strings.TrimSuffix(p, "S")+"FS"); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, f.check(), "flags: INBOX UID")
}

func TestCheckFindsUIDReuse(t *testing.T) {
	f := newCheckFixture(t)
	uid := f.deliver("INBOX", "a", 0, true)
	f.write(Record{Phase: PhaseBegin, Op: OpDeliver, Mailbox: "INBOX", ID: "b"})
	f.write(Record{Phase: PhaseDone, Op: OpDeliver, Mailbox: "INBOX", ID: "b", UID: uid})
	wantProblem(t, f.check(), "was already given to a")
}

func TestCheckFindsExpungedBack(t *testing.T) {
	f := newCheckFixture(t)
	uid := f.deliver("INBOX", "a", 0, true)
	f.write(Record{Phase: PhaseBegin, Op: OpExpunge, Mailbox: "INBOX", UID: uid, ID: "a"})
	f.write(Record{Phase: PhaseDone, Op: OpExpunge, Mailbox: "INBOX", UID: uid, ID: "a"})
	wantProblem(t, f.check(), "expunged INBOX UID")
}

func TestCheckFindsUIDValidityChange(t *testing.T) {
	f := newCheckFixture(t)
	f.deliver("INBOX", "a", 0, true)
	f.uidv["INBOX"]++
	wantProblem(t, f.check(), "UIDVALIDITY")
}

func TestCheckFindsBrokenUidlist(t *testing.T) {
	f := newCheckFixture(t)
	f.deliver("INBOX", "a", 0, true)
	if err := os.WriteFile(filepath.Join(f.inbox, maildir.UidlistName), []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, f.check(), "uidlist does not parse")
}

func TestCheckFindsChangedUID(t *testing.T) {
	f := newCheckFixture(t)
	uid := f.deliver("INBOX", "a", 0, true)
	// The journal says UID uid+1 was given, the spool holds uid: the
	// message's UID "changed".
	rep := func() *Report {
		data, err := os.ReadFile(f.jpath)
		if err != nil {
			t.Fatal(err)
		}
		old := fmt.Sprintf(`"uid":%d,`, uid)
		data = bytes.Replace(data, []byte(old), []byte(fmt.Sprintf(`"uid":%d,`, uid+1)), 1)
		if err := os.WriteFile(f.jpath, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return f.check()
	}()
	wantProblem(t, rep, "UID changed: INBOX holds a")
}

func TestCheckAdoptedMTAMessage(t *testing.T) {
	f := newCheckFixture(t)
	for n := 1; n <= 2; n++ {
		id := fmt.Sprintf("mta0-%d", n)
		if err := deliverProcmail(f.inbox, fmt.Sprintf("1700000000.1_%d.mx", n), buildMessage(id, f.rng)); err != nil {
			t.Fatal(err)
		}
		f.write(Record{Phase: PhaseBegin, Op: OpMTA, Mailbox: "INBOX", ID: id})
		f.write(Record{Phase: PhaseDone, Op: OpMTA, Mailbox: "INBOX", ID: id})
	}
	snap, err := f.boxes["INBOX"].Sync(context.Background(), maildir.SyncOptions{MoveNew: true})
	if err != nil || len(snap.Messages) != 2 {
		t.Fatalf("sync: %v, %d messages", err, len(snap.Messages))
	}
	// Adopt both; expunge the first.
	for i, m := range snap.Messages {
		id, err := readOwnID(context.Background(), f.boxes["INBOX"], m.UID)
		if err != nil {
			t.Fatal(err)
		}
		rec := Record{Op: OpAdopt, Mailbox: "INBOX", UID: m.UID, ID: id, Flags: flagState(m.Flags, m.Keywords)}
		rec.Phase = PhaseBegin
		f.write(rec)
		rec.Phase = PhaseDone
		f.write(rec)
		if i == 0 {
			if _, err := f.boxes["INBOX"].Expunge(context.Background(), []uint32{m.UID}); err != nil {
				t.Fatal(err)
			}
			f.write(Record{Phase: PhaseBegin, Op: OpExpunge, Mailbox: "INBOX", UID: m.UID, ID: id})
			f.write(Record{Phase: PhaseDone, Op: OpExpunge, Mailbox: "INBOX", UID: m.UID, ID: id})
		}
	}
	if rep := f.check(); len(rep.Problems) != 0 {
		t.Fatalf("adopted and expunged: %v", rep)
	}
	// The adopted, live one disappearing is a loss.
	if err := os.Remove(f.file("INBOX", snap.Messages[1].UID)); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, f.check(), "lost: INBOX UID")
}

func TestMTANumber(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want bool
	}{
		{"1700000000.123_45.mx", 45, true},
		{"1700000000.123_45.nodea", 0, false},
		{"1700000000.M1P2Q3.mx", 0, false},
		{"x_-1.mx", 0, false},
	} {
		n, ok := mtaNumber(c.in)
		if ok != c.want || ok && n != c.n {
			t.Errorf("mtaNumber(%q) = %d, %v", c.in, n, ok)
		}
	}
}
