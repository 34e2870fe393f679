package session

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/nfsimap/nfsimap/internal/nfstest"
	"github.com/nfsimap/nfsimap/localindex"
	"github.com/nfsimap/nfsimap/node/maildir"
)

// TestStatusState checks what a STATUS summary is stored with: new/ and
// cur/ as they were before the Sync when both have settled, never the
// uidlist (which STATUS does not compare), whatever its age.
func TestStatusState(t *testing.T) {
	now := time.Now()
	old := now.Add(-time.Hour).UnixNano()
	fresh := now.Add(-time.Second).UnixNano()
	pre := localindex.SpoolState{NewMtime: old, NewSize: 4096, NewIno: 7, CurMtime: old, CurSize: 8192, CurIno: 8}
	// The Sync gave UIDs: its stamp holds a uidlist written a moment ago.
	snap := &maildir.Snapshot{Stamp: maildir.Stamp{
		NewMtime: time.Unix(0, old), CurMtime: time.Unix(0, old),
		UidlistMtime: now, UidlistSize: 300, UidlistIno: 9,
	}}
	got := statusState(pre, snap, now)
	if got != pre {
		t.Errorf("settled new/ and cur/, fresh uidlist: stored %+v, want %+v", got, pre)
	}
	withUidlist := pre
	withUidlist.UidlistMtime, withUidlist.UidlistSize, withUidlist.UidlistIno = fresh, 300, 9
	if got := statusState(withUidlist, snap, now); got != pre {
		t.Errorf("uidlist fields not left out: %+v", got)
	}
	for _, c := range []struct {
		what string
		mod  func(*localindex.SpoolState)
	}{
		{"new/ changed a second ago", func(s *localindex.SpoolState) { s.NewMtime = fresh }},
		{"cur/ changed a second ago", func(s *localindex.SpoolState) { s.CurMtime = fresh }},
	} {
		s := pre
		c.mod(&s)
		if got := statusState(s, snap, now); !got.IsZero() {
			t.Errorf("%s: stored %+v, want the unknown state", c.what, got)
		}
	}
	moved := &maildir.Snapshot{MovedFromNew: []uint32{1}, Stamp: snap.Stamp}
	if got := statusState(pre, moved, now); !got.IsZero() {
		t.Errorf("a Sync that moved mail from new/: stored %+v, want the unknown state", got)
	}
}

// TestStatusSettles counts the requests STATUS sends to an NFS-like mount
// (no listing cache: every listing reaches the filer) for a folder as a
// delivery agent leaves it: messages in new/ and cur/ changed long ago and
// no uidlist yet. The first STATUS lists it and gives the messages UIDs
// (writing the uidlist); the next must not list it again, although the
// uidlist is fresh. After a delivery, STATUS lists the folder while the
// change is younger than settleTime (a change within the same tick of a
// coarse clock could hide), once more after that, and then not again.
func TestStatusSettles(t *testing.T) {
	if err := nfstest.Available(); err != nil {
		t.Skip(err)
	}
	backing := t.TempDir()
	inbox := filepath.Join(backing, "alice", "Maildir")
	genMaildir(t, inbox, 3, 0)
	folder := filepath.Join(inbox, ".Lists")
	const n = 20
	for i := range n {
		deliver(t, folder, fmt.Sprintf("1700000000.M%dP1.mta", i), genMessage(i))
	}
	for i := range n / 2 { // half of them seen by a client: in cur/
		name := fmt.Sprintf("1700000000.M%dP1.mta", i)
		if err := os.Rename(filepath.Join(folder, "new", name), filepath.Join(folder, "cur", name+":2,S")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(folder, "maildirfolder"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-time.Hour)
	for _, d := range []string{"new", "cur"} {
		if err := os.Chtimes(filepath.Join(folder, d), long, long); err != nil {
			t.Fatal(err)
		}
	}
	// Names and attributes cached as in TestSpoolBudgets; listings not.
	const cache = time.Minute
	mnt := nfstest.MountT(t, backing, nfstest.Options{AttrTimeout: cache, EntryTimeout: cache, NegativeTimeout: cache})
	env := newTestEnv(t, func(c *Config) {
		c.Layout.Inbox = mnt.Dir + "/%u/Maildir"
		c.PollInterval = time.Hour
		c.MinSyncInterval = time.Hour
	})
	c := env.dial(nil)
	opts := &imap.StatusOptions{NumMessages: true, NumUnseen: true, UIDNext: true, UIDValidity: true}
	status := func(want uint32) nfstest.Counters {
		t.Helper()
		return measure(mnt, func() {
			d, err := c.Status("Lists", opts).Wait()
			if err != nil {
				t.Fatalf("STATUS: %v", err)
			}
			if *d.NumMessages != want || d.UIDNext != imap.UID(want+1) {
				t.Fatalf("STATUS: MESSAGES %d UIDNEXT %d, want %d and %d", *d.NumMessages, d.UIDNext, want, want+1)
			}
		})
	}

	cold := status(n)
	if cold.Readdir == 0 {
		t.Fatalf("first STATUS did not list the folder: %s", opsLine(cold))
	}
	if _, err := os.Stat(filepath.Join(folder, maildir.UidlistName)); err != nil {
		t.Fatalf("first STATUS gave no UIDs: %v", err)
	}
	for i := range 3 {
		warm := status(n)
		if warm.Readdir != 0 || warm.Read != 0 || spoolOps(warm) > 2 {
			t.Fatalf("STATUS %d after the one that wrote the uidlist: %s; want 2 GETATTRs, no listing", i+2, opsLine(warm))
		}
	}

	// A delivery: new/ changes now.
	deliver(t, folder, "1800000000.M1P2.mta", genMessage(n))
	changed := time.Now()
	if first := status(n + 1); first.Readdir == 0 {
		t.Fatalf("STATUS after a delivery did not list the folder: %s", opsLine(first))
	}
	// Poll until three STATUS commands have started after the change
	// settled: at most the first of them may list the folder.
	settledAt := changed.Add(settleTime)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(settleTime + 20*time.Second)
	var after []nfstest.Counters
	for len(after) < 3 {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("only %d STATUS commands after the change settled", len(after))
		}
		start := time.Now()
		got := status(n + 1)
		if start.After(settledAt) {
			after = append(after, got)
		}
	}
	for i, got := range after[1:] {
		if got.Readdir != 0 || got.Read != 0 || spoolOps(got) > 2 {
			t.Errorf("STATUS %d after the change settled: %s; want 2 GETATTRs, no listing", i+2, opsLine(got))
		}
	}
}
