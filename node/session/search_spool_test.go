package session

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/nfsimap/nfsimap/internal/nfstest"
)

// searchSpoolMessages is the mailbox size of TestSearchSpoolOps: 10,000,
// and 2,000 under the race detector (the budgets do not depend on the
// size).
var searchSpoolMessages = map[bool]int{false: 10000, true: 2000}[raceEnabled]

// TestSearchSpoolOps asserts the spool operations of SEARCH on a mailbox
// whose local index is warm, on the NFS-like mount: keys the index holds
// (flags, sizes, dates, the cached header fields) cost nothing, and a key
// that needs the text reads only the messages the cheap keys left.
func TestSearchSpoolOps(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 10,000-message spool")
	}
	if err := nfstest.Available(); err != nil {
		t.Skip(err)
	}
	n := searchSpoolMessages
	backing := t.TempDir()
	box := filepath.Join(backing, "alice", "Maildir", ".Archive")
	genMaildir(t, box, n, 0)
	if err := os.WriteFile(filepath.Join(box, "maildirfolder"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const cache = 60 * time.Second
	mnt := nfstest.MountT(t, backing, nfstest.Options{AttrTimeout: cache, EntryTimeout: cache, NegativeTimeout: cache, CacheDir: true})
	env := newTestEnv(t, func(c *Config) {
		c.Layout.Inbox = mnt.Dir + "/%u/Maildir"
		c.PollInterval = time.Hour
		c.MinSyncInterval = time.Hour // only the measured commands read the spool
	})

	// Warm the index: one FETCH parses every message once; then a new
	// connection loads the index from disk.
	c := env.dial(nil)
	mustSelect(t, c, "Archive", true)
	if _, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{Envelope: true}).Collect(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	c = env.dial(nil)
	mustSelect(t, c, "Archive", true)

	hdr := func(k, v string) imap.SearchCriteriaHeaderField {
		return imap.SearchCriteriaHeaderField{Key: k, Value: v}
	}
	count := func(pred func(i int) bool) uint32 {
		var k uint32
		for i := 0; i < n; i++ {
			if pred(i) {
				k++
			}
		}
		return k
	}
	unseen := count(func(i int) bool { return i%3 == 0 })
	zero := []struct {
		name string
		c    imap.SearchCriteria
		want uint32
	}{
		{"SUBJECT pears", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{hdr("Subject", "pears")}}, count(func(i int) bool { return i%3 == 1 })},
		{"FROM sender 5", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{hdr("From", "sender 5 ")}}, count(func(i int) bool { return i%97 == 5 })},
		{"TO alice", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{hdr("To", "ALICE@example.com")}}, uint32(n)},
		{"CC anyone", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{hdr("Cc", "x")}}, 0},
		{"BCC anyone", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{hdr("Bcc", "")}}, 0},
		{"HEADER Message-ID <m42@", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{hdr("Message-ID", "<m42@")}}, 1},
		{"HEADER Subject \"\"", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{hdr("SUBJECT", "")}}, uint32(n)},
		{"SENTSINCE 2-Feb-2026", imap.SearchCriteria{SentSince: day(2026, 2, 2)}, uint32(n)},
		{"SENTBEFORE 2-Feb-2026", imap.SearchCriteria{SentBefore: day(2026, 2, 2)}, 0},
		{"UNSEEN SUBJECT apples", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}, Header: []imap.SearchCriteriaHeaderField{hdr("Subject", "apples")}}, unseen},
		{"OR SUBJECT apples NOT FROM sender", imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{
			{Header: []imap.SearchCriteriaHeaderField{hdr("Subject", "apples")}},
			{Not: []imap.SearchCriteria{{Header: []imap.SearchCriteriaHeaderField{hdr("From", "sender")}}}},
		}}}, count(func(i int) bool { return i%3 == 0 })},
		{"LARGER 100 SINCE 1-Feb-2026", imap.SearchCriteria{Larger: 100, Since: day(2026, 2, 1)}, uint32(n)},
	}
	for _, tc := range zero {
		ops := measure(mnt, func() {
			d, err := c.UIDSearch(&tc.c, &imap.SearchOptions{ReturnCount: true}).Wait()
			if err != nil {
				t.Fatalf("SEARCH %s: %v", tc.name, err)
			}
			if d.Count != tc.want {
				t.Errorf("SEARCH %s: %d found, want %d", tc.name, d.Count, tc.want)
			}
		})
		t.Logf("%-40s %s", "SEARCH "+tc.name+", warm", opsLine(ops))
		if spoolOps(ops) != 0 {
			t.Errorf("SEARCH %s on a warm index: %s, budget 0", tc.name, opsLine(ops))
		}
	}

	// A key on the text: only the messages the cheap keys leave are read,
	// each once; NOT SEEN is as cheap as UNSEEN.
	for _, tc := range []struct {
		name string
		c    imap.SearchCriteria
	}{
		{"UNSEEN BODY", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}, Body: []string{"message 3."}}},
		{"BODY NOT SEEN", imap.SearchCriteria{Body: []string{"message 3."}, Not: []imap.SearchCriteria{{Flag: []imap.Flag{imap.FlagSeen}}}}},
		{"OR BODY FROM, UNSEEN", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}, Or: [][2]imap.SearchCriteria{{{Body: []string{"message 3."}}, {Header: []imap.SearchCriteriaHeaderField{hdr("From", "nobody")}}}}}},
	} {
		ops := measure(mnt, func() {
			d, err := c.UIDSearch(&tc.c, &imap.SearchOptions{ReturnCount: true}).Wait()
			if err != nil {
				t.Fatalf("SEARCH %s: %v", tc.name, err)
			}
			if d.Count != 1 {
				t.Errorf("SEARCH %s: %d found, want 1", tc.name, d.Count)
			}
		})
		t.Logf("%-40s %s (%d unseen)", "SEARCH "+tc.name+", warm", opsLine(ops), unseen)
		if ops.Open != int64(unseen) || ops.Read > 2*int64(unseen) || ops.Readdir != 0 {
			t.Errorf("SEARCH %s: %s; want the %d unseen messages opened and read once each", tc.name, opsLine(ops), unseen)
		}
	}
}
