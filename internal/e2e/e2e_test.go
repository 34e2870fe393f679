package e2e

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func needPython(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed (make deps installs it)")
	}
	return py
}

// TestImaplibSession runs a whole mail-client session through Python's
// imaplib: folders, APPEND of CRLF and LF-only mail, FETCH sizes, SEARCH,
// SORT, STORE, COPY, MOVE, EXPUNGE, EXAMINE, RENAME and DELETE.
func TestImaplibSession(t *testing.T) {
	py := needPython(t)
	n := Start(t, Options{})
	host, port, _ := net.SplitHostPort(n.Addr)
	cmd := exec.Command(py, filepath.Join("testdata", "imaplib_session.py"), host, port, "user1", "password")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("imaplib session failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "all checks passed") {
		t.Fatalf("imaplib session did not finish:\n%s", out)
	}
}

func login(t *testing.T, addr, user string, h *imapclient.UnilateralDataHandler) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, &imapclient.Options{UnilateralDataHandler: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, "password").Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

func appendMsg(t *testing.T, c *imapclient.Client, mailbox, id string, flags ...imap.Flag) imap.UID {
	t.Helper()
	body := fmt.Sprintf("From: test@example.org\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\nbody of %s\r\n", id, id, id)
	cmd := c.Append(mailbox, int64(len(body)), &imap.AppendOptions{Flags: flags})
	if _, err := cmd.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := cmd.Wait()
	if err != nil {
		t.Fatalf("APPEND %s: %v", id, err)
	}
	return data.UID
}

// TestTwoSessionsSeeEachOther: two sessions of one user on one node see
// each other's changes at once, the IDLE one by push.
func TestTwoSessionsSeeEachOther(t *testing.T) {
	n := Start(t, Options{PollInterval: time.Hour}) // pushes must not depend on polling
	type event struct {
		kind string
		num  uint32
	}
	events := make(chan event, 64)
	h := &imapclient.UnilateralDataHandler{
		Expunge: func(seq uint32) { events <- event{"expunge", seq} },
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				events <- event{"exists", *d.NumMessages}
			}
		},
		Fetch: func(m *imapclient.FetchMessageData) {
			for item := m.Next(); item != nil; item = m.Next() {
				if f, ok := item.(imapclient.FetchItemDataFlags); ok {
					for _, fl := range f.Flags {
						if fl == imap.FlagFlagged {
							events <- event{"flagged", m.SeqNum}
						}
					}
				}
			}
		},
	}
	a := login(t, n.Addr, "user2", h)
	b := login(t, n.Addr, "user2", nil)
	appendMsg(t, b, "INBOX", "first")
	if _, err := a.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := a.Idle()
	if err != nil {
		t.Fatal(err)
	}
	wait := func(kind string, num uint32) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case e := <-events:
				if e.kind == kind && e.num == num {
					return
				}
			case <-timeout:
				t.Fatalf("IDLE session did not get %s %d within 10s", kind, num)
			}
		}
	}
	appendMsg(t, b, "INBOX", "second")
	wait("exists", 2)
	if err := b.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	wait("flagged", 1)
	if err := b.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	wait("expunge", 1)
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestMTADeliveryNoticed: a file an MTA drops into new/ is seen by an
// IDLE session within the poll interval.
func TestMTADeliveryNoticed(t *testing.T) {
	n := Start(t, Options{PollInterval: 300 * time.Millisecond})
	exists := make(chan uint32, 16)
	c := login(t, n.Addr, "user3", &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
	})
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	deliverLikeMTA(t, filepath.Join(n.Spool, "user3"), "1700000000.P1Q1.mta.example.org", "Subject: from the MTA\n\nhi\n")
	select {
	case num := <-exists:
		if num != 1 {
			t.Fatalf("EXISTS %d, want 1", num)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("MTA delivery not pushed within 10s")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	_ = idle.Wait()
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{UID: true, RFC822Size: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH: %v %d", err, len(msgs))
	}
	body := msgs[0].BodySection[0].Bytes
	if int64(len(body)) != msgs[0].RFC822Size || !strings.Contains(string(body), "\r\n\r\nhi\r\n") {
		t.Fatalf("LF-only delivery served as %q with RFC822.SIZE %d", body, msgs[0].RFC822Size)
	}
}

// TestBadLoginThenGood: a wrong password is refused and the connection
// stays usable.
func TestBadLoginThenGood(t *testing.T) {
	n := Start(t, Options{})
	c, err := imapclient.DialInsecure(n.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Login("user1", "wrong").Wait()
	var imapErr *imap.Error
	if !errors.As(err, &imapErr) || imapErr.Type != imap.StatusResponseTypeNo {
		t.Fatalf("wrong password: %v, want NO", err)
	}
	if err := c.Login("user1", "password").Wait(); err != nil {
		t.Fatalf("good password after a bad one: %v", err)
	}
}
