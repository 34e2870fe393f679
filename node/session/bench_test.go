package session

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// BenchmarkMailbox times STATUS, SELECT and FETCH 1:* (UID FLAGS
// RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE) over a real client on
// loopback, for 10,000- and 100,000-message mailboxes on a plain
// directory (the NFS-like mount is for counting operations, not timing).
// "cold" starts each operation without a local index (and, for FETCH,
// with nothing parsed); "warm" with the index of the previous one.
func BenchmarkMailbox(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		spool := b.TempDir()
		inbox := filepath.Join(spool, "alice", "Maildir")
		genMaildir(b, filepath.Join(inbox, ".Box"), n, 0)
		if err := os.WriteFile(filepath.Join(inbox, ".Box", "maildirfolder"), nil, 0o600); err != nil {
			b.Fatal(err)
		}
		indexDir := b.TempDir()
		env := newTestEnv(b, func(c *Config) {
			c.Layout.Inbox = spool + "/%u/Maildir"
			c.Index = openTestIndex(b, indexDir)
			c.MinSyncInterval = -1
		})
		c := env.dial(nil)
		dropIndex := func() {
			b.StopTimer()
			if err := env.f.cfg.Index.RemoveUser("alice"); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		statusOpts := &imap.StatusOptions{NumMessages: true, NumUnseen: true, UIDNext: true, UIDValidity: true}
		status := func() {
			if _, err := c.Status("Box", statusOpts).Wait(); err != nil {
				b.Fatal(err)
			}
		}
		sel := func() {
			if _, err := c.Select("Box", nil).Wait(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := c.Unselect().Wait(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		fetchOpts := &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true, InternalDate: true, Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}
		fetch := func() {
			if _, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, fetchOpts).Collect(); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("%d/STATUS/cold", n), func(b *testing.B) {
			for b.Loop() {
				dropIndex()
				status()
			}
		})
		b.Run(fmt.Sprintf("%d/STATUS/warm", n), func(b *testing.B) {
			status()
			for b.Loop() {
				status()
			}
		})
		b.Run(fmt.Sprintf("%d/SELECT/cold", n), func(b *testing.B) {
			for b.Loop() {
				dropIndex()
				sel()
			}
		})
		b.Run(fmt.Sprintf("%d/SELECT/warm", n), func(b *testing.B) {
			sel()
			for b.Loop() {
				sel()
			}
		})
		b.Run(fmt.Sprintf("%d/FETCH/cold", n), func(b *testing.B) {
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
		b.Run(fmt.Sprintf("%d/FETCH/warm", n), func(b *testing.B) {
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
}
