package e2e

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// TestOddFilesServed: empty, header-less, binary, NUL-filled and huge files
// in a maildir, and odd names, are served without a crash, with sizes that
// match the bytes sent.
func TestOddFilesServed(t *testing.T) {
	spool := t.TempDir()
	inbox := filepath.Join(spool, "user1")
	huge := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"), 80000) // ~5 MB
	binary := make([]byte, 64*1024)
	if _, err := rand.Read(binary); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"1700000001.empty.host":                     nil,
		"1700000002.noheader.host":                  []byte("just a body line\nand another\n"),
		"1700000003.binary.host":                    binary,
		"1700000004.nul.host":                       append([]byte("Subject: nul\n\n"), make([]byte, 4096)...),
		"1700000005.huge.host":                      append([]byte("Subject: huge\n\n"), huge...),
		"1700000006.crlf-only.host":                 []byte("\r\n\r\n\r\n"),
		"1700000007.uw.host,U12":                    []byte("Subject: uw field\n\nbody\n"),
		"1700000008.badmime.host":                   []byte("Content-Type: multipart/mixed; boundary=\"x\"\n\n--x\nContent-Type: text/plain\n"),
		"1700000009.longheader.host":                append(append([]byte("Subject: "), bytes.Repeat([]byte("x"), 200000)...), []byte("\n\nbody\n")...),
		"1700000010.dup.host:2,S":                   []byte("Subject: flagged\n\nbody\n"),
		"1700000011.strange-info.host,W=31:2,ZZabc": []byte("Subject: strange info\n\nbody\n"),
	}
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(inbox, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range files {
		dir := "new"
		if strings.Contains(name, ":2,") {
			dir = "cur"
		}
		if err := os.WriteFile(filepath.Join(inbox, dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n := Start(t, Options{Spool: spool})
	c := login(t, n.Addr, "user1", nil)
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if int(sel.NumMessages) != len(files) {
		t.Fatalf("%d messages, want %d", sel.NumMessages, len(files))
	}
	var all imap.SeqSet
	all.AddRange(1, 0)
	msgs, err := c.Fetch(all, &imap.FetchOptions{
		UID: true, Flags: true, RFC822Size: true, Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		InternalDate: true,
		BodySection:  []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != len(files) {
		t.Fatalf("FETCH returned %d messages", len(msgs))
	}
	for _, m := range msgs {
		body := m.BodySection[0].Bytes
		if int64(len(body)) != m.RFC822Size {
			t.Errorf("UID %d: RFC822.SIZE %d, BODY[] has %d bytes", m.UID, m.RFC822Size, len(body))
		}
	}
	// SEARCH over all of it, including the body of the huge and binary ones.
	if _, err := c.Search(&imap.SearchCriteria{Body: []string{"no such text anywhere"}}, nil).Wait(); err != nil {
		t.Fatalf("SEARCH BODY: %v", err)
	}
	if _, err := c.Search(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "uw"}}}, nil).Wait(); err != nil {
		t.Fatalf("SEARCH HEADER: %v", err)
	}
}

// TestEscapingNamesRefused: mailbox names that could leave the spool get NO,
// and nothing is created outside it.
func TestEscapingNamesRefused(t *testing.T) {
	n := Start(t, Options{})
	c := login(t, n.Addr, "user1", nil)
	for _, name := range []string{"../user2", "..", "a/../../b", "/etc", "Foo/Bar", ".hidden", "a..b", "x\x7f"} {
		err := c.Create(name, nil).Wait()
		var imapErr *imap.Error
		if !errors.As(err, &imapErr) {
			t.Errorf("CREATE %q: %v, want NO", name, err)
		}
		if _, err := c.Select(name, nil).Wait(); err == nil {
			t.Errorf("SELECT %q succeeded", name)
		}
	}
	entries, err := os.ReadDir(n.Spool)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "user1" {
			t.Errorf("spool holds %q after the attempts", e.Name())
		}
	}
	// The connection is still usable.
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestOversizeLiteralNotExecuted: a literal over the limit is refused and
// its bytes are consumed, never run as commands; the connection goes on.
func TestOversizeLiteralNotExecuted(t *testing.T) {
	n := Start(t, Options{})
	conn, err := net.Dial("tcp", n.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := newLineReader(conn)
	r.expect(t, "* OK")
	fmt.Fprintf(conn, "a LOGIN user1 password\r\n")
	r.expect(t, "a OK")
	payload := strings.Repeat("b CREATE evil\r\n", 1000) // 15,000 bytes, over go-imap's 4 KiB limit
	fmt.Fprintf(conn, "c SEARCH TEXT {%d+}\r\n%s\r\n", len(payload), payload)
	r.expect(t, "c ")
	fmt.Fprintf(conn, "d LIST \"\" \"*\"\r\n")
	var lines []string
	for {
		l := r.line(t)
		lines = append(lines, l)
		if strings.HasPrefix(l, "d ") {
			break
		}
	}
	if strings.Contains(strings.Join(lines, "\n"), "evil") {
		t.Fatalf("literal bytes ran as commands: %q", lines)
	}
	c := login(t, n.Addr, "user1", nil)
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range boxes {
		if strings.Contains(b.Mailbox, "evil") {
			t.Fatalf("mailbox %q was created from literal data", b.Mailbox)
		}
	}
}

type lineReader struct {
	conn net.Conn
	buf  []byte
}

func newLineReader(c net.Conn) *lineReader { return &lineReader{conn: c} }

func (r *lineReader) line(t *testing.T) string {
	t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if i := bytes.IndexByte(r.buf, '\n'); i >= 0 {
			l := string(bytes.TrimRight(r.buf[:i], "\r"))
			r.buf = r.buf[i+1:]
			return l
		}
		chunk := make([]byte, 4096)
		n, err := r.conn.Read(chunk)
		if err != nil {
			t.Fatalf("read: %v (have %q)", err, r.buf)
		}
		r.buf = append(r.buf, chunk[:n]...)
	}
}

func (r *lineReader) expect(t *testing.T, prefix string) string {
	t.Helper()
	for {
		l := r.line(t)
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
}
