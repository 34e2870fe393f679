package front

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/nfsimap/nfsimap/node/auth"
)

// FuzzFront feeds random bytes to one connection (over net.Pipe) of a
// front that hands logged-in users to go-imap: no panic, no hang.
func FuzzFront(f *testing.F) {
	seeds := []string{
		"a CAPABILITY\r\nb NOOP\r\nc LOGOUT\r\n",
		"a LOGIN alice \"secret pass\"\r\nb SELECT INBOX\r\nc APPEND INBOX {5+}\r\nhello\r\nd FETCH 1:* (BODY[] FLAGS)\r\ne UID SORT (ARRIVAL) UTF-8 ALL\r\n",
		"a LOGIN {5}\r\nalice {11+}\r\nsecret pass\r\nb IDLE\r\nDONE\r\nc ID (\"name\" \"x\")\r\n",
		"a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldCBwYXNz\r\nb SEARCH TEXT {5000+}\r\n" + string(bytes.Repeat([]byte("x"), 5000)) + "\r\nc NOOP\r\n",
		"a AUTHENTICATE LOGIN\r\nYWxpY2U=\r\nc2VjcmV0IHBhc3M=\r\nb THREAD REFERENCES UTF-8 ALL\r\n",
		"a LOGIN alice \"secret pass\"\r\nb APPEND INBOX {3}\r\nc APPEND INBOX (\\Seen) {2+}\r\nxy {3+}\r\nabc\r\n",
		"\r\n\r\n* \r\n+ x\r\n{3}\r\nabc\r\na STARTTLS\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	user := imapmemserver.NewUser(testUser, testPass)
	user.Create("INBOX", nil)
	f.Fuzz(func(t *testing.T, input []byte) {
		logs := newPanicCatcher(t)
		cfg := DefaultConfig()
		cfg.Logger = slog.New(logs)
		cfg.FailDelay = time.Microsecond
		cfg.FailDelayMax = time.Microsecond
		cfg.PreAuthTimeout = 2 * time.Second
		cfg.IdleTimeout = 2 * time.Second
		cfg.CommandTimeout = 2 * time.Second
		cfg.WriteTimeout = 2 * time.Second
		fr, err := New(cfg, testAuth{testUser: testPass}, nil, func(context.Context, *auth.User, ConnInfo) (imapserver.Session, error) {
			return &sortSession{UserSession: imapmemserver.NewUserSession(user)}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		fr.trustAll = true
		defer fr.Close()
		server, client := net.Pipe()
		served := make(chan struct{})
		go func() {
			defer close(served)
			fr.ServeConn(server)
		}()
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			io.Copy(io.Discard, bufio.NewReader(client))
		}()
		client.SetWriteDeadline(time.Now().Add(3 * time.Second))
		client.Write(input)
		// Give the server the end of input, then wait for it to finish
		// with what it has: its timeouts bound the wait.
		client.Close()
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Fatal("front hangs")
		}
		<-drained
		// A handed-off connection ends in go-imap's goroutine.
		deadline := time.Now().Add(10 * time.Second)
		for fr.Conns() > 0 {
			if time.Now().After(deadline) {
				t.Fatal("hand-off hangs")
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// FuzzSplitter checks the command-layer parsers: literal headers, command
// lines, argument values, ID lists, and the reading and dropping of
// commands with literals.
func FuzzSplitter(f *testing.F) {
	for _, s := range []string{
		"a UID SORT (DATE) UTF-8 SUBJECT {3}",
		"a LOGIN {5+}",
		"tag ID (\"name\" {2}\r\nab \"x\" NIL)",
		"{99999999999999999999}",
		"a APPEND INBOX {0}",
		"x y \"unterminated",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, ok := parseLiteralSuffix(b); ok && h.size < 0 {
			t.Fatalf("negative literal size in %q", b)
		}
		if cl, ok := splitCommand(b); ok && (cl.tag == "" || cl.name == "") {
			t.Fatalf("empty tag or name from %q", b)
		}
		parseID(b)
		p := argParser{b: b}
		for !p.atEnd() {
			start := p.pos
			p.astring()
			p.sp()
			p.nstring()
			if p.pos == start {
				break
			}
		}
		lr := lineReader{br: bufio.NewReaderSize(bytes.NewReader(b), 16), maxLine: 64}
		for range 100 {
			line, err := lr.readLine()
			if err != nil && err != errLineTooLong {
				break
			}
			if len(line) > 64+tailKeep {
				t.Fatalf("line of %d bytes past the limit", len(line))
			}
			if h, ok := parseLiteralSuffix(line); ok {
				if _, _, err := lr.readArgs(line, 100, func() error { return nil }); err != nil {
					if lr.discardCommand(h, 1000) != nil {
						break
					}
				}
			}
		}
		var h handoffConn
		h.curTag = "a"
		h.closed = true // nothing is written
		h.scanOutputLocked(b)
		if h.outLit < 0 {
			t.Fatal("negative literal count in output scanner")
		}
	})
}
