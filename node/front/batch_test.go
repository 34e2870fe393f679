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

// TestPipelinedAnswersShareWrites sends 32 commands in one write: their
// answers leave together once the last is done, not in a write each, and
// a command sent alone afterwards is still answered at once.
func TestPipelinedAnswersShareWrites(t *testing.T) {
	env := startEnv(t, nil)
	for i := range 10 {
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
	const n = 32
	var burst strings.Builder
	for i := range n {
		// Commands of go-imap's and of the command layer's, mixed.
		if i%8 == 7 {
			fmt.Fprintf(&burst, "p%d ID NIL\r\n", i)
		} else {
			fmt.Fprintf(&burst, "p%d FETCH 1:* (UID FLAGS)\r\n", i)
		}
	}
	before := writes.Load()
	go c.conn.Write([]byte(burst.String())) // net.Pipe: the write waits for our reads
	for i := range n {
		for l := c.line(); !strings.HasPrefix(l, fmt.Sprintf("p%d ", i)); l = c.line() {
			if strings.HasPrefix(l, "p") {
				t.Fatalf("answer out of order: %q before p%d's", l, i)
			}
		}
	}
	got := writes.Load() - before
	t.Logf("%d pipelined commands answered in %d writes", n, got)
	// The layer's own answers (ID) flush what is before them: 4 of them,
	// and the writes net.Pipe's reads split the command burst into.
	if got > 12 {
		t.Errorf("%d pipelined commands answered in %d writes, want them batched", n, got)
	}
	c.send("n NOOP\r\n")
	c.expect("n OK")
	c.send("z LOGOUT\r\n")
	c.expect("z OK")
}
