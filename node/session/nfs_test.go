package session

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/nfsimap/nfsimap/internal/nfstest"
)

// TestNFSDeliveryNoticed serves a user from one NFS-like mount whose
// kernel caches attributes and directory listings for a long time, while
// "another node" delivers through a second mount. The poller must not
// trust the cached directory mtime (DESIGN rule 5): the new message has to
// show long before the cache would expire by itself.
func TestNFSDeliveryNoticed(t *testing.T) {
	backing := t.TempDir()
	const cacheFor = 30 * time.Second
	ours := nfstest.MountT(t, backing, nfstest.Options{AttrTimeout: cacheFor, EntryTimeout: cacheFor, NegativeTimeout: cacheFor, CacheDir: true})
	other := nfstest.MountT(t, backing, nfstest.Options{})
	env := newTestEnv(t, func(c *Config) {
		c.Layout.Inbox = ours.Dir + "/%u/Maildir"
		c.PollInterval = 200 * time.Millisecond
		c.MinSyncInterval = time.Hour // only the poller reads the spool
	})
	u := newUpdates()
	c := env.dial(u)
	mustSelect(t, c, "INBOX", false)
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	deliver(t, filepath.Join(other.Dir, "alice", "Maildir"), "1700000003.M4P4.othernode", "Subject: via nfs\n\nhello\n")
	u.wait(t, "EXISTS 1")
	if d := time.Since(start); d > cacheFor/3 {
		t.Errorf("delivery noticed after %v", d)
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	msg := fetchOne(t, c, imap.SeqSetNum(1), &imap.FetchOptions{RFC822Size: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	if got := string(msg.FindBodySection(&imap.FetchItemBodySection{Peek: true})); got != "Subject: via nfs\r\n\r\nhello\r\n" || msg.RFC822Size != int64(len(got)) {
		t.Errorf("BODY[] %q, RFC822.SIZE %d", got, msg.RFC822Size)
	}
}

// TestNFSPollCost measures the filer operations of an update check on an
// unchanged mailbox (NOOP) and of a FETCH of flags, through the NFS-like
// mount's counters.
func TestNFSPollCost(t *testing.T) {
	backing := t.TempDir()
	mnt := nfstest.MountT(t, backing, nfstest.Options{})
	env := newTestEnv(t, func(c *Config) {
		c.Layout.Inbox = mnt.Dir + "/%u/Maildir"
		c.PollInterval = time.Hour
		c.MinSyncInterval = -1 // check the spool after every command
	})
	c := env.dial(nil)
	for i := 0; i < 50; i++ {
		appendMsg(t, c, "INBOX", "Subject: cost\r\n\r\nbody\r\n", nil)
	}
	if err := c.Create("Other", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		appendMsg(t, c, "Other", "Subject: other\r\n\r\nbody\r\n", nil)
	}
	mustSelect(t, c, "INBOX", false)
	// Let the stamps age past the coarse-mtime guard.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if err := c.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
	}
	const n = 20
	mnt.ResetCounters()
	for i := 0; i < n; i++ {
		if err := c.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
	}
	noop := mnt.Counters()
	mnt.ResetCounters()
	for i := 0; i < n; i++ {
		if _, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true, UID: true}).Collect(); err != nil {
			t.Fatal(err)
		}
	}
	fetch := mnt.Counters()
	statusOpts := &imap.StatusOptions{NumMessages: true, NumUnseen: true, UIDNext: true, Size: true}
	if _, err := c.Status("Other", statusOpts).Wait(); err != nil { // fills the cache
		t.Fatal(err)
	}
	mnt.ResetCounters()
	for i := 0; i < n; i++ {
		st, err := c.Status("Other", statusOpts).Wait()
		if err != nil || *st.NumMessages != 20 {
			t.Fatalf("STATUS: %+v %v", st, err)
		}
	}
	status := mnt.Counters()
	t.Logf("per STATUS of an unchanged 20-message folder: getattr %.1f setattr %.1f lookup %.1f readdir %.1f open %.1f read %.1f",
		float64(status.Getattr)/n, float64(status.Setattr)/n, float64(status.Lookup)/n, float64(status.Readdir)/n, float64(status.Open)/n, float64(status.Read)/n)
	if status.Readdir != 0 || status.Read != 0 {
		t.Errorf("STATUS of an unchanged folder listed or read it: %+v", status)
	}
	t.Logf("per NOOP on an unchanged 50-message INBOX: getattr %.1f setattr %.1f lookup %.1f readdir %.1f open %.1f read %.1f",
		float64(noop.Getattr)/n, float64(noop.Setattr)/n, float64(noop.Lookup)/n, float64(noop.Readdir)/n, float64(noop.Open)/n, float64(noop.Read)/n)
	t.Logf("per FETCH 1:* (FLAGS UID): getattr %.1f setattr %.1f lookup %.1f readdir %.1f open %.1f read %.1f",
		float64(fetch.Getattr)/n, float64(fetch.Setattr)/n, float64(fetch.Lookup)/n, float64(fetch.Readdir)/n, float64(fetch.Open)/n, float64(fetch.Read)/n)
	if noop.Readdir != 0 || noop.Read != 0 {
		t.Errorf("an unchanged mailbox was listed or read: %+v", noop)
	}
}

// TestTwoNodesOneMailbox serves one user from two "nodes" (two factories,
// each on its own NFS-like mount of one spool, with ESTALE faults): the
// changes of one reach the other through the spool, and both end with the
// same view.
func TestTwoNodesOneMailbox(t *testing.T) {
	backing := t.TempDir()
	opts := nfstest.Options{AttrTimeout: 5 * time.Second, EntryTimeout: 5 * time.Second, NegativeTimeout: 5 * time.Second, CacheDir: true}
	mntA := nfstest.MountT(t, backing, opts)
	mntB := nfstest.MountT(t, backing, opts)
	node := func(m *nfstest.Mount) *testEnv {
		return newTestEnv(t, func(c *Config) {
			c.Layout.Inbox = m.Dir + "/%u/Maildir"
			c.PollInterval = 200 * time.Millisecond
		})
	}
	envA, envB := node(mntA), node(mntB)
	ca := envA.dial(nil)
	appendMsg(t, ca, "INBOX", "Subject: first\r\n\r\none\r\n", nil)
	mustSelect(t, ca, "INBOX", false)
	ub := newUpdates()
	cb := envB.dial(ub)
	if d := mustSelect(t, cb, "INBOX", false); d.NumMessages != 1 {
		t.Fatalf("node B sees %d messages", d.NumMessages)
	}
	faults := nfstest.Faults{EStaleRate: 0.02}
	mntA.SetFaults(faults)
	mntB.SetFaults(faults)

	idle, err := cb.Idle()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		appendMsg(t, ca, "INBOX", fmt.Sprintf("Subject: m%d\r\n\r\nbody\r\n", i), nil)
	}
	ub.wait(t, "EXISTS 6")
	if _, err := ca.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	ub.wait(t, "FETCH 2 FLAGS [\\Deleted")
	if _, err := ca.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	ub.wait(t, "EXPUNGE 2")
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	mntA.SetFaults(nfstest.Faults{})
	mntB.SetFaults(nfstest.Faults{})
	uids := func(c *imapclient.Client) string {
		d, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		return d.All.String()
	}
	if a, b := uids(ca), uids(cb); a != b || a != "1,3:6" {
		t.Errorf("node views differ: A %q, B %q", a, b)
	}
	t.Logf("ESTALE injected: A %d, B %d", mntA.Counters().EStale, mntB.Counters().EStale)
}

// TestNFSStatusFresh: STATUS must not report stale counts after another
// node or an MTA changed the mailbox, even though this node's NFS client
// caches attributes (30 s here) far longer than the poll interval: each
// STATUS revalidates new/ and cur/ (DESIGN rule 5). Also with whole-second
// mtimes, where a change in the same second as the last read leaves the
// mtime as it was (then within about 3 s).
func TestNFSStatusFresh(t *testing.T) {
	backing := t.TempDir()
	inbox := filepath.Join(backing, "alice", "Maildir")
	genMaildir(t, inbox, 20, 0)
	const cacheFor = 30 * time.Second
	// Listings are not cached here: with whole-second mtimes a client that
	// keeps a listing until the directory's mtime changes cannot see a
	// file added in the same second as its last listing, whatever the
	// server does (it shows at the directory's next change).
	ours := nfstest.MountT(t, backing, nfstest.Options{AttrTimeout: cacheFor, EntryTimeout: cacheFor, NegativeTimeout: cacheFor})
	other := nfstest.MountT(t, backing, nfstest.Options{})
	const poll = 200 * time.Millisecond
	env := newTestEnv(t, func(c *Config) {
		c.Layout.Inbox = ours.Dir + "/%u/Maildir"
		c.PollInterval = poll
		c.MinSyncInterval = time.Hour
	})
	c := env.dial(nil)
	opts := &imap.StatusOptions{NumMessages: true, NumUnseen: true, UIDNext: true}
	// expect polls STATUS until it shows want, failing after the poll
	// interval (coarseWait with whole-second mtimes, see below).
	wait := poll
	expect := func(what string, messages, unseen uint32) {
		t.Helper()
		deadline := time.Now().Add(wait)
		for {
			d, err := c.Status("INBOX", opts).Wait()
			if err != nil {
				t.Fatalf("%s: STATUS: %v", what, err)
			}
			if *d.NumMessages == messages && *d.NumUnseen == unseen {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: STATUS says MESSAGES %d UNSEEN %d, want %d %d", what, *d.NumMessages, *d.NumUnseen, messages, unseen)
			}
		}
	}
	otherInbox := filepath.Join(other.Dir, "alice", "Maildir")
	expect("start", 20, 7)
	expect("unchanged", 20, 7)
	deliver(t, otherInbox, "1800000001.M1P1.othernode", "Subject: one\n\nx\n")
	expect("delivered to new/ elsewhere", 21, 8)

	// A flag change elsewhere: a rename inside cur/.
	names := listDir(t, filepath.Join(otherInbox, "cur"))
	var seen string
	for _, n := range names {
		if strings.HasSuffix(n, ":2,S") {
			seen = n
			break
		}
	}
	if err := os.Rename(filepath.Join(otherInbox, "cur", seen), filepath.Join(otherInbox, "cur", strings.TrimSuffix(seen, "S"))); err != nil {
		t.Fatal(err)
	}
	expect("flag cleared elsewhere", 21, 9)
	// An expunge elsewhere.
	if err := os.Remove(filepath.Join(otherInbox, "cur", strings.TrimSuffix(seen, "S"))); err != nil {
		t.Fatal(err)
	}
	expect("expunged elsewhere", 20, 8)

	// The same while a session of this node has the mailbox selected.
	c2 := env.dial(nil)
	mustSelect(t, c2, "INBOX", true)
	deliver(t, otherInbox, "1800000002.M2P1.othernode", "Subject: two\n\nx\n")
	expect("delivered while selected here", 21, 9)

	// Whole-second mtimes: deliveries right after a STATUS, within its
	// second, must still show, within about 3 s: a listing taken in the
	// directory's mtime second is not trusted, and since an NFS client
	// keeps serving a cached listing while the mtime looks unchanged,
	// maildir's ListingGuard makes the client drop it and lists again a
	// second after that (this mount caches no listings, but real NFS
	// clients do).
	const coarseWait = 5 * time.Second
	wait = coarseWait
	ours.SetFaults(nfstest.Faults{CoarseMtime: true})
	other.SetFaults(nfstest.Faults{CoarseMtime: true})
	if err := c2.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		expect("coarse mtimes", uint32(21+i), uint32(9+i))
		deliver(t, otherInbox, fmt.Sprintf("1800000003.M%dP1.othernode", i), "Subject: coarse\n\nx\n")
	}
	expect("coarse mtimes, last", 24, 12)
}
