package session

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/nfsimap/nfsimap/internal/nfstest"
	"github.com/nfsimap/nfsimap/node/maildir"
	"github.com/nfsimap/nfsimap/node/sortthread"
)

// genMessage is the content of generated message i (LF line ends, as
// MTAs store them).
func genMessage(i int) string {
	return fmt.Sprintf("From: Sender %d <s%d@example.org>\nTo: alice@example.com\nSubject: message %d about %s\n"+
		"Date: Mon, 02 Feb 2026 %02d:%02d:%02d +0000\nMessage-ID: <m%d@example.org>\n"+
		"Content-Type: text/plain; charset=us-ascii\n\nBody of message %d.\nSecond line.\n",
		i%97, i, i, []string{"apples", "pears", "plums"}[i%3], i/3600%24, i/60%60, i%60, i, i)
}

// genMaildir fills the maildir dir (a plain directory) with n messages in
// cur/ (every third one unseen, names with ,S= and ,W= on even numbers)
// and inNew more in new/, gives them UIDs with a Sync through a plain
// Store, and sets the mtimes of new/, cur/ and the uidlist an hour back,
// so that they count as settled.
func genMaildir(t testing.TB, dir string, n, inNew int) {
	t.Helper()
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	base := time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n+inNew; i++ {
		content := genMessage(i)
		unique := fmt.Sprintf("%d.M%dP1.gen", base.Unix()+int64(i), i)
		if i%2 == 0 {
			unique += fmt.Sprintf(",S=%d,W=%d", len(content), len(toCRLF([]byte(content))))
		}
		var path string
		if i < n {
			flags := "S"
			if i%3 == 0 {
				flags = ""
			}
			path = filepath.Join(dir, "cur", unique+":2,"+flags)
		} else {
			path = filepath.Join(dir, "new", unique)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		d := base.Add(time.Duration(i) * time.Second)
		if err := os.Chtimes(path, d, d); err != nil {
			t.Fatal(err)
		}
	}
	opt := maildir.DefaultOptions()
	opt.NoFsync = true
	store, err := maildir.New(maildir.Paths{Inbox: dir, Root: dir}, opt)
	if err != nil {
		t.Fatal(err)
	}
	mbox, err := store.Mailbox(context.Background(), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mbox.Sync(context.Background(), maildir.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	ageSpool(t, dir)
}

// ageSpool sets the mtimes of a maildir's new/, cur/ and uidlist an hour
// back.
func ageSpool(t testing.TB, dir string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{"new", "cur", maildir.UidlistName} {
		if err := os.Chtimes(filepath.Join(dir, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// spoolOps counts the requests that reach the filer: OPENDIR, RELEASE,
// FLUSH and ACCESS are left out (NFS has no such calls: a directory is
// read with READDIR alone and a close sends nothing unless data is
// dirty).
func spoolOps(c nfstest.Counters) int64 {
	return c.Lookup + c.Getattr + c.Readdir + c.Open + c.Read + c.Write + c.Create + c.Mkdir +
		c.Rename + c.Link + c.Unlink + c.Rmdir + c.Setattr + c.Fsync
}

func opsLine(c nfstest.Counters) string {
	return fmt.Sprintf("%d ops (lookup %d getattr %d readdir %d open %d read %d write %d create %d rename %d link %d unlink %d setattr %d)",
		spoolOps(c), c.Lookup, c.Getattr, c.Readdir, c.Open, c.Read, c.Write, c.Create, c.Rename, c.Link, c.Unlink, c.Setattr)
}

// measure runs f and returns the mount's counters for it.
func measure(m *nfstest.Mount, f func()) nfstest.Counters {
	m.ResetCounters()
	f()
	return m.Counters()
}

// budgetMessages is the mailbox size of the budget test: 10,000, and
// 2,000 under the race detector (the budgets of unchanged mailboxes do not
// depend on the size).
var budgetMessages = map[bool]int{false: 10000, true: 2000}[raceEnabled]

// TestSpoolBudgets asserts the spool operations per command for a
// 10,000-message mailbox (2,000 under the race detector) on the NFS-like mount (kernel caches of 60 s,
// directory listings cached, as an NFS client keeps them while the
// directory's attributes are unchanged). A change that adds spool
// operations to these commands fails here.
func TestSpoolBudgets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 20,000-message spool")
	}
	if err := nfstest.Available(); err != nil {
		t.Skip(err)
	}
	backing := t.TempDir()
	inbox := filepath.Join(backing, "alice", "Maildir")
	const inNew = 50
	genMaildir(t, inbox, budgetMessages, inNew)
	genMaildir(t, filepath.Join(inbox, ".Archive"), budgetMessages, 0)
	if err := os.WriteFile(filepath.Join(inbox, ".Archive", "maildirfolder"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const cache = 60 * time.Second
	mnt := nfstest.MountT(t, backing, nfstest.Options{AttrTimeout: cache, EntryTimeout: cache, NegativeTimeout: cache, CacheDir: true})
	env := newTestEnv(t, func(c *Config) {
		c.Layout.Inbox = mnt.Dir + "/%u/Maildir"
		c.PollInterval = time.Hour
		c.MinSyncInterval = time.Hour // only the measured commands read the spool
	})
	c := env.dial(nil)

	// One listing of a directory, for comparison: how many READDIR
	// requests a pass over cur/ takes.
	probe := nfstest.MountT(t, backing, nfstest.Options{})
	listing := measure(probe, func() { listDir(t, filepath.Join(probe.Dir, "alice", "Maildir", ".Archive", "cur")) }).Readdir
	t.Logf("one listing of a %d-file cur/: %d READDIR requests", budgetMessages, listing)

	statusOpts := &imap.StatusOptions{NumMessages: true, NumUnseen: true, UIDNext: true, UIDValidity: true}
	status := func(name string, want int) {
		t.Helper()
		d, err := c.Status(name, statusOpts).Wait()
		if err != nil {
			t.Fatalf("STATUS %s: %v", name, err)
		}
		if *d.NumMessages != uint32(want) {
			t.Fatalf("STATUS %s: MESSAGES %d, want %d", name, *d.NumMessages, want)
		}
	}
	type row struct {
		what string
		c    nfstest.Counters
	}
	var table []row
	record := func(what string, c nfstest.Counters) nfstest.Counters {
		table = append(table, row{what, c})
		return c
	}
	defer func() {
		for _, r := range table {
			t.Logf("%-58s %s", r.what, opsLine(r.c))
		}
	}()

	cold := record("STATUS Archive, cold (no summary)", measure(mnt, func() { status("Archive", budgetMessages) }))
	if cold.Readdir > 2*listing+4 {
		t.Errorf("cold STATUS listed more than new/ and cur/ once: %s", opsLine(cold))
	}
	warm := record("STATUS Archive, unchanged", measure(mnt, func() { status("Archive", budgetMessages) }))
	if spoolOps(warm) > 2 || warm.Readdir != 0 || warm.Read != 0 {
		t.Errorf("STATUS of an unchanged folder: %s, budget 2 metadata operations", opsLine(warm))
	}
	record("STATUS INBOX (50 in new/), cold", measure(mnt, func() { status("INBOX", budgetMessages+inNew) }))
	warm = record("STATUS INBOX (50 in new/), unchanged", measure(mnt, func() { status("INBOX", budgetMessages+inNew) }))
	if spoolOps(warm) > 2 || warm.Readdir != 0 || warm.Read != 0 {
		t.Errorf("STATUS of an unchanged INBOX with mail in new/: %s, budget 2", opsLine(warm))
	}

	fetchOpts := &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true, InternalDate: true, Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}
	fetchAll := func(cl *imapclient.Client, want int) []*imapclient.FetchMessageBuffer {
		t.Helper()
		msgs, err := cl.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, fetchOpts).Collect()
		if err != nil {
			t.Fatalf("FETCH: %v", err)
		}
		if len(msgs) != want {
			t.Fatalf("FETCH returned %d messages, want %d", len(msgs), want)
		}
		return msgs
	}

	sel := record("SELECT Archive, cold (no index)", measure(mnt, func() { mustSelect(t, c, "Archive", false) }))
	if sel.Readdir > 2*listing+4 || sel.Read > 64 {
		t.Errorf("cold SELECT: %s; want one listing of new/ and cur/ and the uidlist read", opsLine(sel))
	}
	fc := record("FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE), cold", measure(mnt, func() { fetchAll(c, budgetMessages) }))
	if fc.Open > int64(budgetMessages) || fc.Read > int64(budgetMessages) || fc.Readdir != 0 {
		t.Errorf("cold FETCH read a file more than once: %s", opsLine(fc))
	}
	first := fetchAll(c, budgetMessages)
	fw := record("FETCH 1:* (same items), again", measure(mnt, func() { fetchAll(c, budgetMessages) }))
	if spoolOps(fw) != 0 {
		t.Errorf("FETCH after the first time: %s, budget 0", opsLine(fw))
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}

	// A new connection: the mailbox's state comes from the local index.
	c2 := env.dial(nil)
	sel = record("SELECT Archive, unchanged (warm index)", measure(mnt, func() { mustSelect(t, c2, "Archive", false) }))
	if spoolOps(sel) > 3 || sel.Readdir != 0 || sel.Read != 0 {
		t.Errorf("SELECT of an unchanged mailbox: %s, budget 3", opsLine(sel))
	}
	var again []*imapclient.FetchMessageBuffer
	fw = record("FETCH 1:* (same items), from the index after re-SELECT", measure(mnt, func() { again = fetchAll(c2, budgetMessages) }))
	if spoolOps(fw) != 0 {
		t.Errorf("FETCH from a warm index: %s, budget 0", opsLine(fw))
	}
	for _, i := range []int{0, 1, 2, budgetMessages / 2, budgetMessages - 1} {
		a, b := first[i], again[i]
		if a.UID != b.UID || a.RFC822Size != b.RFC822Size || !a.InternalDate.Equal(b.InternalDate) ||
			a.Envelope.Subject != b.Envelope.Subject || a.Envelope.MessageID != b.Envelope.MessageID ||
			len(a.Envelope.From) != 1 || a.Envelope.From[0] != b.Envelope.From[0] || !a.Envelope.Date.Equal(b.Envelope.Date) ||
			a.BodyStructure.MediaType() != b.BodyStructure.MediaType() {
			t.Errorf("message %d differs between a read and the index: %+v / %+v", i+1, a, b)
		}
	}
	if err := c2.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}

	// EXAMINE of INBOX with mail in new/ (nothing moves), then again warm.
	record("EXAMINE INBOX, cold", measure(mnt, func() { mustSelect(t, c2, "INBOX", true) }))
	if err := c2.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	ex := record("EXAMINE INBOX (50 in new/), unchanged", measure(mnt, func() { mustSelect(t, c2, "INBOX", true) }))
	if spoolOps(ex) > 3 || ex.Readdir != 0 || ex.Read != 0 {
		t.Errorf("EXAMINE of an unchanged INBOX: %s, budget 3", opsLine(ex))
	}
	if err := c2.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}

	// SORT and THREAD of a warm mailbox: header fields from the index.
	s, err := env.f.NewSession(t.Context(), env.user, "budget", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Select("Archive", &imap.SelectOptions{ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	srt := record("SORT (SUBJECT FROM) ALL, warm", measure(mnt, func() {
		got, err := s.Sort(true, &sortthread.SortCommand{Keys: []sortthread.SortKey{{Criterion: sortthread.SortSubject}, {Criterion: sortthread.SortFrom}}, Criteria: &imap.SearchCriteria{}})
		if err != nil || len(got) != budgetMessages {
			t.Errorf("SORT: %d results, %v", len(got), err)
		}
	}))
	thr := record("THREAD REFERENCES ALL, warm", measure(mnt, func() {
		if _, err := s.Thread(true, &sortthread.ThreadCommand{Algorithm: sortthread.AlgorithmReferences, Criteria: &imap.SearchCriteria{}}); err != nil {
			t.Error(err)
		}
	}))
	if spoolOps(srt) != 0 || spoolOps(thr) != 0 {
		t.Errorf("SORT/THREAD of a warm mailbox read the spool: %s / %s", opsLine(srt), opsLine(thr))
	}
	s.Close()

	// New mail in new/ of a selected mailbox, noticed by a STATUS of it:
	// cur/ (unchanged) is not listed again (the client's cached listing
	// serves the Sync), new/ is listed once (two READDIRs: its entries,
	// then the end); under the uidlist lock the new files are checked
	// one by one (maildir.Sync's assignment), not listed again; each new
	// message is read once by the FETCH of it.
	c3 := env.dial(nil)
	mustSelect(t, c3, "Archive", true)
	const fresh = 5
	for i := 0; i < fresh; i++ {
		deliver(t, filepath.Join(inbox, ".Archive"), fmt.Sprintf("1800000000.M%dP9.mta", i), genMessage(budgetMessages+i))
	}
	nm := record("STATUS Archive (selected) after 5 deliveries to new/", measure(mnt, func() { status("Archive", budgetMessages+fresh) }))
	if nm.Readdir > 2 || nm.Read > 32 {
		t.Errorf("new mail: %s; budget: new/ listed once (2 READDIRs), cur/ not at all (a listing of it is %d READDIRs), the uidlist read", opsLine(nm), listing)
	}
	if err := c3.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	var newMsgs []*imapclient.FetchMessageBuffer
	nf := record("FETCH of the 5 new messages (same items)", measure(mnt, func() {
		var err error
		newMsgs, err = c3.Fetch(imap.SeqSet{{Start: uint32(budgetMessages) + 1, Stop: 0}}, fetchOpts).Collect()
		if err != nil {
			t.Error(err)
		}
	}))
	if len(newMsgs) != fresh || nf.Open > fresh || nf.Read > 2*fresh || nf.Readdir != 0 {
		t.Errorf("FETCH of %d new messages: %d returned, %s", fresh, len(newMsgs), opsLine(nf))
	}
	if len(newMsgs) > 0 && !strings.HasPrefix(newMsgs[0].Envelope.Subject, fmt.Sprintf("message %d ", budgetMessages)) {
		t.Errorf("first new message: %q", newMsgs[0].Envelope.Subject)
	}
}
