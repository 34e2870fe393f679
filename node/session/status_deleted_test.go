package session

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/nfsimap/nfsimap/internal/nfstest"
	"github.com/nfsimap/nfsimap/node/maildir"
)

// markDeleted flags every fifth message of a maildir made by genMaildir
// (n messages in cur/) \Deleted by renaming it, sets the mtimes back as
// genMaildir does, and returns how many it flagged and their RFC822 size.
func markDeleted(t testing.TB, dir string, n int) (count uint32, size int64) {
	t.Helper()
	base := time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i += 5 {
		content := genMessage(i)
		unique := fmt.Sprintf("%d.M%dP1.gen", base.Unix()+int64(i), i)
		if i%2 == 0 {
			unique += fmt.Sprintf(",S=%d,W=%d", len(content), len(toCRLF([]byte(content))))
		}
		flags := "S"
		if i%3 == 0 {
			flags = ""
		}
		from := filepath.Join(dir, "cur", unique+":2,"+flags)
		if err := os.Rename(from, filepath.Join(dir, "cur", unique+":2,"+flags+"T")); err != nil {
			t.Fatal(err)
		}
		count++
		size += int64(len(toCRLF([]byte(content))))
	}
	ageSpool(t, dir)
	return count, size
}

// TestStatusDeletedBudget: STATUS with DELETED (IMAP4rev2) and
// DELETED-STORAGE of an unchanged mailbox is served from the summary like
// MESSAGES and UNSEEN: at most 2 spool operations, no listing, no read.
func TestStatusDeletedBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a large spool")
	}
	if err := nfstest.Available(); err != nil {
		t.Skip(err)
	}
	backing := t.TempDir()
	inbox := filepath.Join(backing, "alice", "Maildir")
	archive := filepath.Join(inbox, ".Archive")
	genMaildir(t, inbox, 10, 0)
	genMaildir(t, archive, budgetMessages, 0)
	if err := os.WriteFile(filepath.Join(archive, "maildirfolder"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	wantDeleted, wantDeletedSize := markDeleted(t, archive, budgetMessages)
	const cache = 60 * time.Second
	mnt := nfstest.MountT(t, backing, nfstest.Options{AttrTimeout: cache, EntryTimeout: cache, NegativeTimeout: cache, CacheDir: true})
	env := newTestEnv(t, func(c *Config) {
		c.Layout.Inbox = mnt.Dir + "/%u/Maildir"
		c.PollInterval = time.Hour
		c.MinSyncInterval = time.Hour
	})
	c := env.dial(nil)

	status := func(what string, opts *imap.StatusOptions) nfstest.Counters {
		t.Helper()
		var d *imap.StatusData
		ops := measure(mnt, func() {
			var err error
			if d, err = c.Status("Archive", opts).Wait(); err != nil {
				t.Fatalf("%s: STATUS: %v", what, err)
			}
		})
		if *d.NumMessages != uint32(budgetMessages) || d.NumDeleted == nil || *d.NumDeleted != wantDeleted {
			t.Fatalf("%s: MESSAGES %d DELETED %v, want %d %d", what, *d.NumMessages, d.NumDeleted, budgetMessages, wantDeleted)
		}
		if opts.DeletedStorage && (d.DeletedStorage == nil || *d.DeletedStorage != wantDeletedSize) {
			t.Fatalf("%s: DELETED-STORAGE %v, want %d", what, d.DeletedStorage, wantDeletedSize)
		}
		t.Logf("%-52s %s", what, opsLine(ops))
		return ops
	}
	rev2 := &imap.StatusOptions{NumMessages: true, NumUnseen: true, NumDeleted: true, UIDNext: true, UIDValidity: true}
	withSizes := &imap.StatusOptions{NumMessages: true, NumDeleted: true, Size: true, DeletedStorage: true}

	// What each such STATUS cost before the summary kept the \Deleted
	// count: a Sync of the unchanged maildir.
	opt := maildir.DefaultOptions()
	opt.NoFsync = true
	store, err := maildir.New(maildir.Paths{Inbox: filepath.Join(mnt.Dir, "alice", "Maildir"), Root: filepath.Join(mnt.Dir, "alice", "Maildir")}, opt)
	if err != nil {
		t.Fatal(err)
	}
	mbox, err := store.Mailbox(context.Background(), "Archive")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mbox.Sync(context.Background(), maildir.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	sync := measure(mnt, func() {
		if _, err := mbox.Sync(context.Background(), maildir.SyncOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("%-52s %s", "a Sync of the unchanged folder (the old way)", opsLine(sync))

	status("STATUS (... DELETED), cold", rev2)
	for i := 0; i < 2; i++ {
		warm := status("STATUS (... DELETED), unchanged", rev2)
		if spoolOps(warm) > 2 || warm.Readdir != 0 || warm.Read != 0 {
			t.Errorf("STATUS DELETED of an unchanged folder: %s, budget 2 metadata operations", opsLine(warm))
		}
	}
	status("STATUS (SIZE DELETED-STORAGE), sizes not yet known", withSizes)
	warm := status("STATUS (SIZE DELETED-STORAGE), unchanged", withSizes)
	if spoolOps(warm) > 2 || warm.Readdir != 0 || warm.Read != 0 {
		t.Errorf("STATUS DELETED-STORAGE of an unchanged folder: %s, budget 2 metadata operations", opsLine(warm))
	}
	warm = status("STATUS (... DELETED) again, unchanged", rev2)
	if spoolOps(warm) > 2 || warm.Readdir != 0 || warm.Read != 0 {
		t.Errorf("STATUS DELETED of an unchanged folder: %s, budget 2", opsLine(warm))
	}
}

// TestStatusDeletedFresh: the DELETED count follows \Deleted set and
// cleared by a session of this node (selected or not) and by another
// mount, and expunges; a change made elsewhere shows within the poll
// interval, as in TestNFSStatusFresh.
func TestStatusDeletedFresh(t *testing.T) {
	if err := nfstest.Available(); err != nil {
		t.Skip(err)
	}
	backing := t.TempDir()
	inbox := filepath.Join(backing, "alice", "Maildir")
	genMaildir(t, inbox, 20, 0)
	const cacheFor = 30 * time.Second
	ours := nfstest.MountT(t, backing, nfstest.Options{AttrTimeout: cacheFor, EntryTimeout: cacheFor, NegativeTimeout: cacheFor})
	other := nfstest.MountT(t, backing, nfstest.Options{})
	const poll = 200 * time.Millisecond
	env := newTestEnv(t, func(c *Config) {
		c.Layout.Inbox = ours.Dir + "/%u/Maildir"
		c.PollInterval = poll
		c.MinSyncInterval = time.Hour
	})
	c := env.dial(nil)
	opts := &imap.StatusOptions{NumMessages: true, NumUnseen: true, NumDeleted: true}
	expect := func(cl *imapclient.Client, what string, messages, deleted uint32) {
		t.Helper()
		deadline := time.Now().Add(poll)
		for {
			d, err := cl.Status("INBOX", opts).Wait()
			if err != nil {
				t.Fatalf("%s: STATUS: %v", what, err)
			}
			if *d.NumMessages == messages && *d.NumDeleted == deleted {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: STATUS says MESSAGES %d DELETED %d, want %d %d", what, *d.NumMessages, *d.NumDeleted, messages, deleted)
			}
		}
	}
	store := func(cl *imapclient.Client, uid imap.UID, op imap.StoreFlagsOp) {
		t.Helper()
		err := cl.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
		if err != nil {
			t.Fatalf("UID STORE %d: %v", uid, err)
		}
	}
	expect(c, "start", 20, 0)
	expect(c, "unchanged", 20, 0)

	// By this node: a session sets \Deleted on two messages, and STATUS
	// from another session sees it while the mailbox is selected and
	// after it is unselected.
	c2 := env.dial(nil)
	mustSelect(t, c2, "INBOX", false)
	store(c2, 3, imap.StoreFlagsAdd)
	store(c2, 4, imap.StoreFlagsAdd)
	expect(c, "set here, selected", 20, 2)
	if err := c2.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	expect(c, "set here, unselected", 20, 2)
	expect(c, "set here, unchanged since", 20, 2)
	mustSelect(t, c2, "INBOX", false)
	store(c2, 4, imap.StoreFlagsDel)
	if err := c2.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	expect(c, "cleared here", 20, 1)
	mustSelect(t, c2, "INBOX", false)
	if err := c2.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	if err := c2.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	expect(c, "expunged here", 19, 0)

	// Elsewhere: renames and an unlink through the other mount.
	otherCur := filepath.Join(other.Dir, "alice", "Maildir", "cur")
	var victim string
	for _, n := range listDir(t, otherCur) {
		if strings.HasSuffix(n, ":2,S") {
			victim = n
			break
		}
	}
	if victim == "" {
		t.Fatal("no seen message in cur/")
	}
	rename := func(from, to string) {
		t.Helper()
		if err := os.Rename(filepath.Join(otherCur, from), filepath.Join(otherCur, to)); err != nil {
			t.Fatal(err)
		}
	}
	rename(victim, victim+"T")
	expect(c, "set elsewhere", 19, 1)
	expect(c, "set elsewhere, unchanged since", 19, 1)
	rename(victim+"T", victim)
	expect(c, "cleared elsewhere", 19, 0)
	rename(victim, victim+"T")
	expect(c, "set elsewhere again", 19, 1)
	if err := os.Remove(filepath.Join(otherCur, victim+"T")); err != nil {
		t.Fatal(err)
	}
	expect(c, "expunged elsewhere", 18, 0)

	// Elsewhere while a session of this node has the mailbox selected.
	mustSelect(t, c2, "INBOX", true)
	var seen string
	for _, n := range listDir(t, otherCur) {
		if strings.HasSuffix(n, ":2,S") {
			seen = n
			break
		}
	}
	rename(seen, seen+"T")
	expect(c, "set elsewhere while selected here", 18, 1)
	if err := c2.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	expect(c, "after unselect", 18, 1)
}

// TestStatusDeletedOldSummary: a summary file the previous format wrote
// (without the \Deleted count) is not used: STATUS DELETED is computed
// from the spool and the file replaced.
func TestStatusDeletedOldSummary(t *testing.T) {
	indexDir := t.TempDir()
	env := newTestEnv(t, func(c *Config) { c.Index = openTestIndex(t, indexDir) })
	deliver(t, env.inbox(), "1800000001.M1P1.test", "Subject: one\n\nx\n")
	deliver(t, env.inbox(), "1800000002.M2P1.test", "Subject: two\n\nxy\n")
	c := env.dial(nil)
	mustSelect(t, c, "INBOX", false)
	err := c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	opts := &imap.StatusOptions{NumMessages: true, NumDeleted: true, Size: true, DeletedStorage: true}
	check := func(what string) {
		t.Helper()
		d, err := c.Status("INBOX", opts).Wait()
		if err != nil {
			t.Fatalf("%s: STATUS: %v", what, err)
		}
		if *d.NumMessages != 2 || *d.NumDeleted != 1 || *d.Size != 39 || *d.DeletedStorage != 20 {
			t.Fatalf("%s: MESSAGES %d DELETED %d SIZE %d DELETED-STORAGE %d, want 2 1 39 20",
				what, *d.NumMessages, *d.NumDeleted, *d.Size, *d.DeletedStorage)
		}
	}
	check("first")

	// Find the summary file and make it a version 3 file that claims
	// no \Deleted message (its checksum made right again).
	var sumPath string
	err = filepath.WalkDir(indexDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".sum") {
			sumPath = path
		}
		return err
	})
	if err != nil || sumPath == "" {
		t.Fatalf("no summary file under %s: %v", indexDir, err)
	}
	b, err := os.ReadFile(sumPath)
	if err != nil {
		t.Fatal(err)
	}
	version := binary.LittleEndian.Uint16(b[8:10])
	binary.LittleEndian.PutUint16(b[8:10], 3)
	end := len(b) - 4
	binary.LittleEndian.PutUint32(b[end:], crc32.Checksum(b[:end], crc32.MakeTable(crc32.Castagnoli)))
	if err := os.WriteFile(sumPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// Settled mtimes, so that the summary computed now is stored.
	ageSpool(t, env.inbox())
	corrupt := env.f.cfg.Index.Stats().Corrupt
	check("old summary")
	if got := env.f.cfg.Index.Stats().Corrupt; got != corrupt+1 {
		t.Errorf("old summary not counted as discarded: Corrupt %d, was %d", got, corrupt)
	}
	b, err = os.ReadFile(sumPath)
	if err != nil {
		t.Fatalf("summary not written again: %v", err)
	}
	if v := binary.LittleEndian.Uint16(b[8:10]); v != version {
		t.Errorf("summary rewritten with version %d, want %d", v, version)
	}
	hits := env.f.cfg.Index.Stats().SummaryHits
	check("rewritten summary")
	if got := env.f.cfg.Index.Stats().SummaryHits; got != hits+1 {
		t.Errorf("rewritten summary not used: SummaryHits %d, was %d", got, hits)
	}
}
