package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/nfsimap/nfsimap/internal/dovecot"
	"github.com/nfsimap/nfsimap/internal/e2e"
)

// A message whose To has two addresses and whose Cc is a group: servers
// that follow RFC 3501's grammar (nfsimap, Dovecot, Cyrus) write the
// ENVELOPE's address lists with no space between addresses, as
// ((...)(...)). The tests below check the loadtest reads that form.
const manyAddrMessage = "From: Load Test <loadtest@example.org>\r\n" +
	"To: a@x.org, b@x.org\r\n" +
	"Cc: group: c@x.org, d@x.org;\r\n" +
	"Subject: many addresses\r\n" +
	"Date: Wed, 25 Nov 2026 20:00:00 +0000\r\n" +
	"Message-ID: <many@loadtest.example.org>\r\n" +
	"\r\n" +
	"body\r\n"

// deliver writes a message into maildir/new the way an MTA does.
func deliver(t *testing.T, maildir, name, text string) {
	t.Helper()
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(maildir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(maildir, "tmp", name)
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(maildir, "new", name)); err != nil {
		t.Fatal(err)
	}
}

// checkEnvelopeFetch runs the loadtest's own fetch path (connect, SELECT,
// fetchTail with ENVELOPE) against addr, then fetches the envelope once
// more and checks every address came through.
func checkEnvelopeFetch(t *testing.T, addr, user, password string) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addrs = []string{addr}
	cfg.Password = password
	cfg.CommandTimeout = 10 * time.Second
	cfg.Progress = false
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := &runner{cfg: cfg, stats: newStats(time.Now()), checker: newChecker(true), limiter: newLimiter(0), rng: rand.New(rand.NewSource(1))}
	ctx := context.Background()
	cl, err := r.connect(ctx, user, user+"#0", rand.New(rand.NewSource(1)))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer cl.logout(ctx)
	if _, err := cl.selectBox(ctx, "INBOX"); err != nil {
		t.Fatalf("SELECT: %v", err)
	}
	// The message was delivered to new/ behind the server's back; one
	// run against Dovecot answered SELECT with 0 messages, so wait for
	// the server to report it (NOOP) before fetching.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if mb := cl.c.Mailbox(); mb != nil && mb.NumMessages > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server reports no message in INBOX")
		}
		if err := cl.c.Noop().Wait(); err != nil {
			t.Fatalf("NOOP: %v", err)
		}
	}
	cl.fetchTail(ctx, "INBOX", 1, true)
	r.stats.mu.Lock()
	fetches := r.stats.commands["FETCH"]
	r.stats.mu.Unlock()
	if fetches == nil {
		t.Fatal("fetchTail sent no FETCH")
	}
	rows, _, _ := r.stats.report(time.Second)
	for _, row := range rows {
		if len(row.Errors) > 0 {
			t.Errorf("%s errors %v; log:\n%v", row.Command, row.Errors, cl.log.snapshot())
		}
	}
	msgs, err := cl.c.Fetch(seqFrom(1), &imap.FetchOptions{Envelope: true, UID: true}).Collect()
	if err != nil {
		t.Fatalf("FETCH ENVELOPE: %v", err)
	}
	if len(msgs) != 1 || msgs[0].Envelope == nil {
		t.Fatalf("got %d messages, want 1 with an envelope", len(msgs))
	}
	env := msgs[0].Envelope
	if got := addrList(env.To); got != "a@x.org b@x.org" {
		t.Errorf("To = %q", got)
	}
	if got := addrList(env.Cc); got != "group: c@x.org d@x.org ;" {
		t.Errorf("Cc = %q", got)
	}
	if got := addrList(env.From); got != "loadtest@example.org" {
		t.Errorf("From = %q", got)
	}
	if env.Subject != "many addresses" {
		t.Errorf("Subject = %q", env.Subject)
	}
}

// addrList prints addresses as "a@b", a group start as "name:" and a
// group end as ";".
func addrList(l []imap.Address) string {
	var out string
	for i, a := range l {
		if i > 0 {
			out += " "
		}
		switch {
		case a.IsGroupStart():
			out += a.Mailbox + ":"
		case a.IsGroupEnd():
			out += ";"
		default:
			out += a.Addr()
		}
	}
	return out
}

func TestEnvelopeManyAddressesNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the nfsimap binary")
	}
	spool := t.TempDir()
	deliver(t, filepath.Join(spool, "user1"), "1700000000.M1P1.loadtest", manyAddrMessage)
	n := e2e.Start(t, e2e.Options{Spool: spool})
	requireNoSpaceOnWire(t, n.Addr, "user1", "password")
	checkEnvelopeFetch(t, n.Addr, "user1", "password")
}

func TestEnvelopeManyAddressesDovecot(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Dovecot")
	}
	spool := t.TempDir()
	deliver(t, filepath.Join(spool, "user1"), "1700000000.M1P1.loadtest", manyAddrMessage)
	s := dovecot.Start(t, spool, map[string]string{"user1": "password"})
	requireNoSpaceOnWire(t, s.Addr(), "user1", "password")
	checkEnvelopeFetch(t, s.Addr(), "user1", "password")
}

// requireNoSpaceOnWire fetches the envelope over a raw connection and
// fails unless the server writes adjacent addresses as ")(", so the tests
// above really cover that form.
func requireNoSpaceOnWire(t *testing.T, addr, user, password string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	var fetched string
	for i, cmd := range []string{"LOGIN " + user + " " + password, "EXAMINE INBOX", "FETCH 1 ENVELOPE", "LOGOUT"} {
		tag := fmt.Sprintf("w%d", i)
		if _, err := fmt.Fprintf(conn, "%s %s\r\n", tag, cmd); err != nil {
			t.Fatal(err)
		}
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			if strings.HasPrefix(line, "* 1 FETCH") {
				fetched = line
			}
			if strings.HasPrefix(line, tag+" ") {
				if !strings.HasPrefix(line, tag+" OK") {
					t.Fatalf("%s: %s", cmd, line)
				}
				break
			}
		}
	}
	if !strings.Contains(fetched, `"x.org")(`) {
		t.Fatalf("server wrote no address list without spaces; the test covers nothing:\n%s", fetched)
	}
	t.Logf("ENVELOPE on the wire: %s", strings.TrimSpace(fetched))
}

// scriptedFetch is one FETCH answer as RFC 3501 servers write it: address
// lists with no space between addresses, in the ENVELOPE and in a
// message/rfc822 part's envelope inside a multipart BODYSTRUCTURE.
const scriptedFetch = `* 1 FETCH (UID 1 FLAGS () RFC822.SIZE 300 ` +
	`ENVELOPE (NIL "s" ((NIL NIL "loadtest" "example.org")) NIL NIL ` +
	`((NIL NIL "a" "x.org")(NIL NIL "b" "x.org")) ` +
	`((NIL NIL "group" NIL)(NIL NIL "c" "x.org")(NIL NIL "d" "x.org")(NIL NIL NIL NIL)) NIL NIL NIL) ` +
	`BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 4 1)` +
	`("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 100 ` +
	`(NIL "inner" ((NIL NIL "e" "x.org")(NIL NIL "f" "x.org")) NIL NIL ((NIL NIL "g" "x.org")(NIL NIL "h" "x.org")) NIL NIL NIL NIL) ` +
	`("TEXT" "PLAIN" NIL NIL NIL "7BIT" 4 1) 5) "MIXED"))` + "\r\n"

// startScripted serves one scripted IMAP session on loopback: OK to every
// command, one message on SELECT, scriptedFetch on FETCH.
func startScripted(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		if _, err := io.WriteString(conn, "* OK [CAPABILITY IMAP4rev1] scripted\r\n"); err != nil {
			return
		}
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			tag, cmd := f[0], strings.ToUpper(f[1])
			if cmd == "UID" && len(f) > 2 {
				cmd = strings.ToUpper(f[2])
			}
			var out string
			switch cmd {
			case "SELECT", "EXAMINE":
				out = "* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 2] ok\r\n"
			case "FETCH":
				out = scriptedFetch
			case "LOGOUT":
				out = "* BYE bye\r\n"
			}
			if _, err := io.WriteString(conn, out+tag+" OK done\r\n"); err != nil || cmd == "LOGOUT" {
				return
			}
		}
	}()
	return ln.Addr().String()
}

// TestEnvelopeWithoutSpacesParses pins what the loadtest relies on:
// go-imap's client decoder takes the space between list elements as
// optional before "(" (imapwire Decoder.SP), so ")(" in address lists
// parses, in ENVELOPE and in BODYSTRUCTURE alike. A go-imap upgrade that
// loses this fails here.
func TestEnvelopeWithoutSpacesParses(t *testing.T) {
	addr := startScripted(t)
	cfg := DefaultConfig()
	cfg.Addrs = []string{addr}
	cfg.CommandTimeout = 5 * time.Second
	cfg.Progress = false
	r := &runner{cfg: cfg, stats: newStats(time.Now()), checker: newChecker(true), limiter: newLimiter(0), rng: rand.New(rand.NewSource(1))}
	ctx := context.Background()
	cl, err := r.connect(ctx, "user1", "user1#0", rand.New(rand.NewSource(1)))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer cl.logout(ctx)
	if _, err := cl.selectBox(ctx, "INBOX"); err != nil {
		t.Fatalf("SELECT: %v", err)
	}
	// The message was delivered to new/ behind the server's back; one
	// run against Dovecot answered SELECT with 0 messages, so wait for
	// the server to report it (NOOP) before fetching.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if mb := cl.c.Mailbox(); mb != nil && mb.NumMessages > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server reports no message in INBOX")
		}
		if err := cl.c.Noop().Wait(); err != nil {
			t.Fatalf("NOOP: %v", err)
		}
	}
	cl.fetchTail(ctx, "INBOX", 1, true)
	rows, _, _ := r.stats.report(time.Second)
	sawFetch := false
	for _, row := range rows {
		sawFetch = sawFetch || row.Command == "FETCH"
		if len(row.Errors) > 0 {
			t.Errorf("%s errors %v; log:\n%v", row.Command, row.Errors, cl.log.snapshot())
		}
	}
	if !sawFetch {
		t.Fatal("fetchTail sent no FETCH")
	}
	msgs, err := cl.c.Fetch(seqFrom(1), &imap.FetchOptions{UID: true, Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{}}).Collect()
	if err != nil {
		t.Fatalf("FETCH: %v", err)
	}
	if len(msgs) != 1 || msgs[0].Envelope == nil {
		t.Fatalf("got %d messages, want 1 with an envelope", len(msgs))
	}
	env := msgs[0].Envelope
	if got := addrList(env.To); got != "a@x.org b@x.org" {
		t.Errorf("To = %q", got)
	}
	if got := addrList(env.Cc); got != "group: c@x.org d@x.org ;" {
		t.Errorf("Cc = %q", got)
	}
	mp, ok := msgs[0].BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || len(mp.Children) != 2 {
		t.Fatalf("BODYSTRUCTURE = %#v, want multipart with 2 parts", msgs[0].BodyStructure)
	}
	inner, ok := mp.Children[1].(*imap.BodyStructureSinglePart)
	if !ok || inner.MessageRFC822 == nil || inner.MessageRFC822.Envelope == nil {
		t.Fatalf("second part = %#v, want message/rfc822 with an envelope", mp.Children[1])
	}
	ienv := inner.MessageRFC822.Envelope
	if got := addrList(ienv.From); got != "e@x.org f@x.org" {
		t.Errorf("inner From = %q", got)
	}
	if got := addrList(ienv.To); got != "g@x.org h@x.org" {
		t.Errorf("inner To = %q", got)
	}
}

// TestGeneratedMessagesCarrySeveralAddresses checks the loadtest's own
// messages: over a run's worth of them, some have several To addresses,
// some a Cc and some a Cc group, and all those fields parse as addresses.
func TestGeneratedMessagesCarrySeveralAddresses(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var manyTo, withCc, group int
	for i := 0; i < 200; i++ {
		msg, err := mail.ReadMessage(bytes.NewReader(buildMessage(fmt.Sprintf("m%d", i), rng)))
		if err != nil {
			t.Fatal(err)
		}
		to, err := msg.Header.AddressList("To")
		if err != nil {
			t.Fatalf("To %q: %v", msg.Header.Get("To"), err)
		}
		if len(to) >= 2 {
			manyTo++
		}
		if cc := msg.Header.Get("Cc"); cc != "" {
			withCc++
			if strings.Contains(cc, ":") {
				group++
			}
			if l, err := msg.Header.AddressList("Cc"); err != nil || len(l) < 2 {
				t.Fatalf("Cc %q: %d addresses, %v", cc, len(l), err)
			}
		}
	}
	if manyTo < 50 || withCc < 30 || group < 10 {
		t.Fatalf("of 200 messages: %d with several To, %d with Cc, %d with a group", manyTo, withCc, group)
	}
}

// TestRunAgainstNodeWithManyAddresses runs the loadtest itself against a
// real node whose INBOXes start with a many-address message, so the
// fetching profiles read its ENVELOPE, and desktop2 adds its own
// many-address messages: no FETCH may fail and no violation be reported.
func TestRunAgainstNodeWithManyAddresses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the nfsimap binary")
	}
	spool := t.TempDir()
	for _, u := range userNames(3) {
		deliver(t, filepath.Join(spool, u), "1700000000.M1P1.loadtest", manyAddrMessage)
	}
	n := e2e.Start(t, e2e.Options{Spool: spool})
	res := runAgainst(t, n.Addr, map[string]float64{"mobile": 1, "idle": 1, "desktop2": 1}, 3, 3*time.Second)
	for _, v := range res.Violations {
		t.Errorf("violation: %s (%v)", v.What, v.Commands)
	}
	var fetches uint64
	for _, row := range res.Commands {
		if row.Command == "FETCH" {
			fetches = row.Count
		}
		if len(row.Errors) > 0 {
			t.Errorf("%s: errors %v", row.Command, row.Errors)
		}
	}
	if fetches == 0 {
		t.Fatal("no FETCH ran")
	}
}
