package session

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/nfsimap/nfsimap/node/front"
)

// serveFront runs the real front (pre-auth, hand-off, command layer) for
// env's factory on a loopback listener and returns a logged-in client and
// the listener's address.
func serveFront(tb testing.TB, env *testEnv) (*imapclient.Client, string) {
	tb.Helper()
	fcfg := front.DefaultConfig()
	fcfg.FailDelay, fcfg.FailDelayMax = time.Millisecond, time.Millisecond
	fr, err := front.New(fcfg, oneUser{user: env.user, password: "secret"}, nil, env.f.New)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					tb.Errorf("accept: %v", err)
				}
				return
			}
			go fr.ServeConn(conn)
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	c := imapclient.New(conn, nil)
	tb.Cleanup(func() {
		c.Close()
		ln.Close()
		<-done
		fr.Close()
	})
	if err := c.Login("alice", "secret").Wait(); err != nil {
		tb.Fatalf("LOGIN: %v", err)
	}
	return c, ln.Addr().String()
}

// BenchmarkFetchEnvelopeFront times FETCH 1:* (ENVELOPE) on a
// 10,000-message mailbox through the front (where envelopes are encoded
// from the raw header and swapped into go-imap's output): "cold" with
// nothing parsed, "warm" from the local index.
func BenchmarkFetchEnvelopeFront(b *testing.B) {
	const n = 10000
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
