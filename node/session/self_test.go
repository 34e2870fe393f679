package session

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestCopyMoveToSelf(t *testing.T) {
	env := newTestEnv(t, nil)
	c := env.dial(nil)
	appendMsg(t, c, "INBOX", "Subject: a\r\n\r\na\r\n", nil)
	appendMsg(t, c, "INBOX", "Subject: b\r\n\r\nb\r\n", nil)
	mustSelect(t, c, "INBOX", false)
	cd, err := c.Copy(imap.SeqSetNum(1), "INBOX").Wait()
	if err != nil || cd.DestUIDs.String() != "3" {
		t.Fatalf("COPY to self: %+v %v", cd, err)
	}
	md, err := c.Move(imap.SeqSetNum(2), "INBOX").Wait()
	if err != nil || md.DestUIDs.String() != "4" {
		t.Fatalf("MOVE to self: %+v %v", md, err)
	}
	d, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil || d.All.String() != "1,3:4" {
		t.Errorf("UIDs after COPY and MOVE to self: %v %v", d, err)
	}
}

func TestSelectedMailboxDeleted(t *testing.T) {
	env := newTestEnv(t, nil)
	u := newUpdates()
	c1 := env.dial(u)
	c2 := env.dial(nil)
	if err := c2.Create("Doomed", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	appendMsg(t, c2, "Doomed", "Subject: a\r\n\r\na\r\n", nil)
	appendMsg(t, c2, "Doomed", "Subject: b\r\n\r\nb\r\n", nil)
	mustSelect(t, c1, "Doomed", false)
	if err := c2.Delete("Doomed").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c1.Noop().Wait(); err != nil {
		t.Fatalf("NOOP in a deleted mailbox: %v", err)
	}
	u.wait(t, "EXPUNGE")
	if err := c1.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	if mb := c1.Mailbox(); mb == nil || mb.NumMessages != 0 {
		t.Errorf("client still counts %+v", mb)
	}
}

// TestFetchOddMessages fetches everything of messages that break MIME
// rules; the server must answer (a panic fails the test through
// panicLogger).
func TestFetchOddMessages(t *testing.T) {
	env := newTestEnv(t, nil)
	c := env.dial(nil)
	odd := []string{
		"Content-Type: multipart/mixed; boundary=NOPE\r\n\r\nno parts at all\r\n",
		"Content-Type: multipart/mixed\r\n\r\n--\r\n--\r\n",
		"From: =?x-unknown?q?Zed?= <z@example.org>\r\nSubject: =?utf-8?q?broken\r\nDate: yesterday\r\n\r\nbody\r\n",
		"Content-Type: message/rfc822\r\n\r\n",
		"Content-Type: multipart/digest; boundary=D\r\n\r\n--D\r\n\r\nSubject: inner\r\n\r\ninner\r\n--D--\r\n",
		"Content-Type: text/plain; charset=x-nonsense\r\nContent-Transfer-Encoding: x-unknown\r\n\r\n\x00\xff\xfe\r\n",
		"\r\n",
		"no header at all",
	}
	for _, m := range odd {
		appendMsg(t, c, "INBOX", m, nil)
	}
	mustSelect(t, c, "INBOX", false)
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, RFC822Size: true, Envelope: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection: []*imap.FetchItemBodySection{
			{Peek: true}, {Part: []int{1}, Peek: true}, {Part: []int{1, 1}, Specifier: imap.PartSpecifierHeader, Peek: true},
			{Part: []int{2}, Specifier: imap.PartSpecifierMIME, Peek: true}, {Specifier: imap.PartSpecifierText, Peek: true},
		},
		BinarySection:     []*imap.FetchItemBinarySection{{Part: []int{1}, Peek: true}},
		BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{1}}},
	}).Collect()
	if err != nil {
		t.Fatalf("FETCH: %v", err)
	}
	if len(msgs) != len(odd) {
		t.Fatalf("FETCH returned %d messages, want %d", len(msgs), len(odd))
	}
	for i, m := range msgs {
		// A NUL is served as 0x80 (RFC 3501 literals are CHAR8), size unchanged.
		want := strings.ReplaceAll(odd[i], "\x00", "\x80")
		if body := m.FindBodySection(&imap.FetchItemBodySection{Peek: true}); string(body) != want || m.RFC822Size != int64(len(odd[i])) {
			t.Errorf("message %d: BODY[] %q size %d", i+1, body, m.RFC822Size)
		}
	}
	// A non-PEEK FETCH of BODY (the non-extended structure) too.
	if _, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{}}).Collect(); err != nil {
		t.Fatalf("FETCH BODY: %v", err)
	}
}
