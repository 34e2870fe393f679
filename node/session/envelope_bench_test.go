package session

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// BenchmarkFetchEnvelopeFront times FETCH 1:* (ENVELOPE) on a
// 10,000-message mailbox through the front (where envelopes are encoded
// from the raw header and swapped into go-imap's output): "cold" with
// nothing parsed, "warm" from the local index.
func BenchmarkFetchEnvelopeFront(b *testing.B) {
	const n = 10000
	env := benchBoxEnv(b, n)
	c, _ := serveFront(b, env)
	opts := &imap.FetchOptions{Envelope: true}
	fetch := func() {
		msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, opts).Collect()
		if err != nil {
			b.Fatal(err)
		}
		if len(msgs) != n || msgs[n-1].Envelope == nil {
			b.Fatalf("%d messages", len(msgs))
		}
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			if err := env.f.cfg.Index.RemoveUser("alice"); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Select("Box", nil).Wait(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			fetch()
			b.StopTimer()
			if err := c.Unselect().Wait(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("warm", func(b *testing.B) {
		if _, err := c.Select("Box", nil).Wait(); err != nil {
			b.Fatal(err)
		}
		fetch()
		for b.Loop() {
			fetch()
		}
		if err := c.Unselect().Wait(); err != nil {
			b.Fatal(err)
		}
	})
}

// benchBoxEnv makes a spool whose user alice has a folder Box of n
// generated messages, on a plain directory, and a session environment
// with a local index over it (no minimum sync interval), for the
// benchmarks of SEARCH, SORT and FETCH.
func benchBoxEnv(b *testing.B, n int) *testEnv {
	b.Helper()
	spool := b.TempDir()
	inbox := filepath.Join(spool, "alice", "Maildir")
	genMaildir(b, filepath.Join(inbox, ".Box"), n, 0)
	if err := os.WriteFile(filepath.Join(inbox, ".Box", "maildirfolder"), nil, 0o600); err != nil {
		b.Fatal(err)
	}
	indexDir := b.TempDir()
	return newTestEnv(b, func(c *Config) {
		c.Layout.Inbox = spool + "/%u/Maildir"
		c.Index = openTestIndex(b, indexDir)
		c.MinSyncInterval = -1
	})
}

// warmBox selects Box read-only on c and fetches every envelope once,
// so that the local index holds every message parsed.
func warmBox(b *testing.B, c *imapclient.Client) {
	b.Helper()
	if _, err := c.Select("Box", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{Envelope: true}).Collect(); err != nil {
		b.Fatal(err)
	}
}
