package front

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// countingConn counts the writes to a client socket.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

type bytesLiteral struct{ *strings.Reader }

func (b bytesLiteral) Size() int64 { return b.Reader.Size() }

var _ imap.LiteralReader = bytesLiteral{}

// TestFetchIsBatched checks that a 2,000-message FETCH leaves in a few
// writes, not one per line as go-imap alone does.
func TestFetchIsBatched(t *testing.T) {
	env := startEnv(t, nil)
	const n = 2000
	for i := range n {
		msg := fmt.Sprintf("Subject: m%d\r\n\r\nbody %d\r\n", i, i)
		if _, err := env.user.Append("INBOX", bytesLiteral{strings.NewReader(msg)}, &imap.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var writes atomic.Int64
	env.f.trustAll = true // net.Pipe has no IP address
	srv, cli := net.Pipe()
	go env.f.ServeConn(countingConn{srv, &writes})
	c := &rawClient{t: t, conn: cli}
	c.br = newReader(cli)
	c.expect("* OK")
	c.login()
	c.send("s SELECT INBOX\r\n")
	c.expect("s OK")
	before := writes.Load()
	c.send("f FETCH 1:* (UID FLAGS RFC822.SIZE)\r\n")
	lines := 0
	for l := c.line(); !strings.HasPrefix(l, "f "); l = c.line() {
		lines++
	}
	got := writes.Load() - before
	t.Logf("FETCH of %d messages: %d response lines in %d writes", n, lines, got)
	if lines < n || got > 20 {
		t.Errorf("%d lines in %d writes", lines, got)
	}
	c.send("z LOGOUT\r\n")
	c.expect("z OK")
}
