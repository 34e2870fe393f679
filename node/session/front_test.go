package session

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/nfsimap/nfsimap/node/auth"
	"github.com/nfsimap/nfsimap/node/front"
)

// oneUser is a test Authenticator with one user.
type oneUser struct {
	user     *auth.User
	password string
}

func (a oneUser) Authenticate(ctx context.Context, name, password string) (*auth.User, error) {
	if name != a.user.Name || password != a.password {
		return nil, auth.ErrBadCredentials
	}
	return a.user, nil
}

func (a oneUser) Lookup(ctx context.Context, name string) (*auth.User, error) {
	if name != a.user.Name {
		return nil, auth.ErrUnknownUser
	}
	return a.user, nil
}

// TestThroughFront logs in through the real front (LOGIN on loopback) and
// uses the session behind it, SORT and THREAD included (the front answers
// them through the session's Sorter and Threader).
func TestThroughFront(t *testing.T) {
	env := newTestEnv(t, nil)
	addr := startFront(t, env, func(c *front.Config) {
		c.Caps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapMove: {}, imap.CapNamespace: {}, imap.CapESearch: {}}
	})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := imapclient.New(conn, nil)
	t.Cleanup(func() { c.Close() })
	if err := c.Login("alice", "wrong").Wait(); err == nil {
		t.Fatal("LOGIN with a wrong password succeeded")
	}
	if err := c.Login("alice", "secret").Wait(); err != nil {
		t.Fatalf("LOGIN: %v", err)
	}
	for _, m := range []string{
		"Subject: pear\r\nMessage-ID: <1@x>\r\n\r\nx\r\n",
		"Subject: Re: pear\r\nMessage-ID: <2@x>\r\nReferences: <1@x>\r\n\r\nxx\r\n",
		"Subject: apple\r\nMessage-ID: <3@x>\r\n\r\nxxx\r\n",
	} {
		appendMsg(t, c, "INBOX", m, nil)
	}
	mustSelect(t, c, "INBOX", false)
	nums, err := c.Sort(&imapclient.SortOptions{
		SearchCriteria: &imap.SearchCriteria{},
		SortCriteria:   []imapclient.SortCriterion{{Key: imapclient.SortKeySubject}},
	}).Wait()
	if err != nil {
		t.Fatalf("SORT: %v", err)
	}
	if len(nums) != 3 || nums[0] != 3 || nums[1] != 1 || nums[2] != 2 {
		t.Errorf("SORT SUBJECT = %v", nums)
	}
	threads, err := c.Thread(&imapclient.ThreadOptions{Algorithm: imap.ThreadReferences, SearchCriteria: &imap.SearchCriteria{}}).Wait()
	if err != nil {
		t.Fatalf("THREAD: %v", err)
	}
	if len(threads) != 2 {
		t.Errorf("THREAD REFERENCES = %+v", threads)
	}
	msg := fetchOne(t, c, imap.SeqSetNum(3), &imap.FetchOptions{RFC822Size: true, UID: true})
	if msg.UID != 3 || msg.RFC822Size != int64(len("Subject: apple\r\nMessage-ID: <3@x>\r\n\r\nxxx\r\n")) {
		t.Errorf("FETCH through the front: %+v", msg)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}
}

// startFront runs the real front (pre-auth, hand-off, command layer) for
// env's factory on a loopback listener, with mod (may be nil) applied to
// its config, and returns the listener's address.
func startFront(tb testing.TB, env *testEnv, mod func(*front.Config)) string {
	tb.Helper()
	fcfg := front.DefaultConfig()
	fcfg.FailDelay, fcfg.FailDelayMax = time.Millisecond, time.Millisecond
	if mod != nil {
		mod(&fcfg)
	}
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
	tb.Cleanup(func() {
		ln.Close()
		<-done
		fr.Close()
	})
	return ln.Addr().String()
}

// serveFront is startFront with the default config and a client logged
// in through it; it returns the client and the listener's address.
func serveFront(tb testing.TB, env *testEnv) (*imapclient.Client, string) {
	tb.Helper()
	addr := startFront(tb, env, nil)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	c := imapclient.New(conn, nil)
	tb.Cleanup(func() { c.Close() })
	if err := c.Login("alice", "secret").Wait(); err != nil {
		tb.Fatalf("LOGIN: %v", err)
	}
	return c, addr
}
