package session

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestIndexDamage deletes the whole index directory, single files, and
// truncates and overwrites index files in the middle of a session: every
// answer stays right (the index is rebuilt from the spool).
func TestIndexDamage(t *testing.T) {
	indexDir := t.TempDir()
	env := newTestEnv(t, func(c *Config) {
		c.Index = openTestIndex(t, indexDir)
		c.MinSyncInterval = -1
	})
	genMaildir(t, env.inbox(), 30, 0)
	genMaildir(t, filepath.Join(env.inbox(), ".Other"), 12, 0)
	c := env.dial(nil)
	// A node reads nothing from the index until a session asks.
	if st := env.f.cfg.Index.Stats(); st.SummaryHits+st.SummaryMisses+st.MailboxHits+st.MailboxMisses != 0 {
		t.Errorf("index read before any command: %+v", st)
	}
	fetchOpts := &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true, InternalDate: true, Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{}}
	signature := func(cl *imapclient.Client) string {
		t.Helper()
		msgs, err := cl.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, fetchOpts).Collect()
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, m := range msgs {
			b.WriteString(m.Envelope.Subject)
			b.WriteString(m.InternalDate.String())
			b.WriteString(m.BodyStructure.MediaType())
			b.WriteByte(byte('0' + m.RFC822Size%10))
		}
		return b.String()
	}
	status := func(name string, want uint32) {
		t.Helper()
		d, err := c.Status(name, &imap.StatusOptions{NumMessages: true, NumUnseen: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if *d.NumMessages != want {
			t.Errorf("STATUS %s: %d messages, want %d", name, *d.NumMessages, want)
		}
	}
	mustSelect(t, c, "Other", false)
	mustSelect(t, c, "INBOX", false)
	// One mailbox's state (and index) in memory: Other's was dropped.
	env.f.reg.boxesMu.Lock()
	if n := len(env.f.reg.boxes); n != 1 {
		t.Errorf("%d mailbox states in memory after switching mailboxes", n)
	}
	env.f.reg.boxesMu.Unlock()
	want := signature(c)
	status("Other", 12)
	files := func() []string {
		var out []string
		_ = filepath.Walk(indexDir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				out = append(out, p)
			}
			return nil
		})
		return out
	}
	if len(files()) == 0 {
		t.Fatal("nothing was written to the index")
	}
	reselect := func(what string) {
		t.Helper()
		if err := c.Unselect().Wait(); err != nil {
			t.Fatal(err)
		}
		if d := mustSelect(t, c, "INBOX", false); d.NumMessages != 30 {
			t.Errorf("%s: SELECT shows %d messages", what, d.NumMessages)
		}
		if got := signature(c); got != want {
			t.Errorf("%s: FETCH differs", what)
		}
		status("Other", 12)
	}

	if err := os.RemoveAll(indexDir); err != nil {
		t.Fatal(err)
	}
	if got := signature(c); got != want {
		t.Error("FETCH differs after the index directory was deleted")
	}
	status("Other", 12)
	reselect("index directory deleted")

	for _, mode := range []string{"remove", "truncate", "garbage"} {
		for _, p := range files() {
			var err error
			switch mode {
			case "remove":
				err = os.Remove(p)
			case "truncate":
				if fi, serr := os.Stat(p); serr == nil {
					err = os.Truncate(p, fi.Size()/2)
				}
			case "garbage":
				err = os.WriteFile(p, []byte(strings.Repeat("\x00garbage", 40)), 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			status("Other", 12)
			status("INBOX", 30)
			reselect(mode + " " + filepath.Base(p))
		}
	}
	st := env.f.cfg.Index.Stats()
	if st.Corrupt == 0 {
		t.Errorf("no damaged file was noticed: %+v", st)
	}
}

// TestWithoutIndex: with no local index configured, STATUS, SELECT and
// FETCH work the same (parses kept in memory while selected, STATUS
// numbers in the in-memory cache).
func TestWithoutIndex(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Index = nil })
	genMaildir(t, env.inbox(), 25, 3)
	c := env.dial(nil)
	opts := &imap.StatusOptions{NumMessages: true, NumUnseen: true, UIDNext: true}
	for i := 0; i < 2; i++ {
		d, err := c.Status("INBOX", opts).Wait()
		if err != nil || *d.NumMessages != 28 || *d.NumUnseen != 12 || d.UIDNext != 29 {
			t.Fatalf("STATUS: %+v %v", d, err)
		}
	}
	if d := mustSelect(t, c, "INBOX", true); d.NumMessages != 28 {
		t.Fatalf("EXAMINE: %d messages", d.NumMessages)
	}
	fetchOpts := &imap.FetchOptions{UID: true, RFC822Size: true, Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{}}
	var first []*imapclient.FetchMessageBuffer
	for i := 0; i < 2; i++ {
		msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, fetchOpts).Collect()
		if err != nil || len(msgs) != 28 {
			t.Fatalf("FETCH: %d, %v", len(msgs), err)
		}
		if i == 0 {
			first = msgs
			continue
		}
		for k := range msgs {
			if msgs[k].Envelope.Subject != first[k].Envelope.Subject || msgs[k].RFC822Size != first[k].RFC822Size {
				t.Errorf("message %d differs on the second FETCH", k+1)
			}
		}
	}
	if got := first[27].Envelope.Subject; !strings.HasPrefix(got, "message 27 ") {
		t.Errorf("last subject %q", got)
	}
}
