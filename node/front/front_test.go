package front

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

func TestGreetingCapabilityLoginDisabled(t *testing.T) {
	env := startEnv(t, func(c *Config) { c.TrustedNets = []netip.Prefix{} })
	c := env.dial()
	c.send("a CAPABILITY\r\n")
	capLine := c.expect("* CAPABILITY")
	for _, want := range []string{"IMAP4rev1", "STARTTLS", "LOGINDISABLED", "ID", "SASL-IR", "LITERAL+"} {
		if !strings.Contains(capLine, " "+want) {
			t.Errorf("capabilities %q lack %s", capLine, want)
		}
	}
	if strings.Contains(capLine, "AUTH=PLAIN") {
		t.Errorf("AUTH=PLAIN offered without TLS: %q", capLine)
	}
	c.expect("a OK")
	c.send("b LOGIN alice x\r\n")
	c.expect("b NO [PRIVACYREQUIRED]")
	c.send("c AUTHENTICATE PLAIN\r\n")
	c.expect("c NO [PRIVACYREQUIRED]")
	c.send("d NOOP\r\n")
	c.expect("d OK")
	c.send("e FROB\r\n")
	c.expect("e BAD")
	c.send("f LOGIN\r\n")
	c.expect("f ") // go-imap says NO [SERVERBUG] to this syntax error
	c.send("g SELECT INBOX\r\n")
	c.expect("g ")
	c.send("h LOGOUT\r\n")
	c.expect("* BYE")
	c.expect("h OK")

	web := env.dial()
	web.send("POST / HTTP/1.1\r\nHost: x\r\n")
	web.expect("* BYE")

	noisy := env.dial()
	for i := range 10 {
		noisy.send(fmt.Sprintf("n%d FROB\r\n", i))
		noisy.expect(fmt.Sprintf("n%d BAD", i))
	}
	noisy.expect("* BYE")
}

func TestLoopbackIsTrusted(t *testing.T) {
	env := startEnv(t, nil)
	c := env.dial()
	c.send("a CAPABILITY\r\n")
	capLine := c.expect("* CAPABILITY")
	if !strings.Contains(capLine, "AUTH=PLAIN") || strings.Contains(capLine, "LOGINDISABLED") {
		t.Errorf("loopback capabilities: %q", capLine)
	}
	ok := c.login()
	for _, want := range []string{"CAPABILITY", "IDLE", "SORT", "THREAD=REFERENCES", "ID", "UIDPLUS"} {
		if !strings.Contains(ok, want) {
			t.Errorf("LOGIN reply %q lacks %s", ok, want)
		}
	}
	c.send("b CAPABILITY\r\n")
	after := c.expect("* CAPABILITY")
	if !strings.Contains(after, "SORT") || strings.Contains(after, "LITERAL-") {
		t.Errorf("capabilities after login: %q", after)
	}
	c.expect("b OK")
}

func TestStartTLSThenLogin(t *testing.T) {
	env := startEnv(t, func(c *Config) { c.TrustedNets = []netip.Prefix{} })
	client, err := imapclient.DialStartTLS(env.addr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.Login(testUser, testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := client.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestIMAPS(t *testing.T) {
	env := startEnv(t, func(c *Config) { c.TrustedNets = []netip.Prefix{} })
	client, err := imapclient.DialTLS(env.tlsLn, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if caps := client.Caps(); caps.Has(imap.CapStartTLS) || !caps.Has(imap.Cap("AUTH=PLAIN")) {
		t.Errorf("IMAPS capabilities: %v", caps)
	}
	// AUTHENTICATE PLAIN with SASL-IR (imapclient uses it when offered).
	if err := client.Authenticate(sasl.NewPlainClient("", testUser, testPass)); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestLoginWithLiterals(t *testing.T) {
	env := startEnv(t, nil)
	c := env.dial()
	c.send(fmt.Sprintf("a LOGIN {%d}\r\n", len(testUser)))
	c.expect("+ ")
	c.send(fmt.Sprintf("%s {%d+}\r\n%s\r\n", testUser, len(testPass), testPass))
	c.expect("a OK [CAPABILITY")
	c.send("b NOOP\r\n")
	c.expect("b OK")
}

func TestLoginLiteralTooBig(t *testing.T) {
	env := startEnv(t, nil)
	c := env.dial()
	c.send("a LOGIN {100000}\r\n")
	c.expect("a NO [TOOBIG]")
	junk := strings.Repeat("x", 9000)
	c.send("b LOGIN {9000+}\r\n" + junk + " y\r\n")
	c.expect("b NO [TOOBIG]")
	c.send("c NOOP\r\n")
	c.expect("c OK")
}

func TestAuthenticatePlainWithoutIR(t *testing.T) {
	env := startEnv(t, nil)
	c := env.dial()
	c.send("a AUTHENTICATE PLAIN\r\n")
	if l := c.line(); l != "+ " {
		t.Fatalf("challenge %q", l)
	}
	c.send(base64.StdEncoding.EncodeToString([]byte("\x00"+testUser+"\x00"+testPass)) + "\r\n")
	c.expect("a OK [CAPABILITY")
}

func TestAuthenticatePlainIR(t *testing.T) {
	env := startEnv(t, nil)
	c := env.dial()
	c.send("a AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+testUser+"\x00wrong")) + "\r\n")
	c.expect("a NO [AUTHENTICATIONFAILED]")
	c.send("b AUTHENTICATE PLAIN\r\n")
	c.expect("+")
	c.send("*\r\n")
	c.expect("b BAD")
	c.send("c AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte(testUser+"\x00"+testUser+"\x00"+testPass)) + "\r\n")
	c.expect("c OK [CAPABILITY")
}

func TestAuthenticateLogin(t *testing.T) {
	env := startEnv(t, nil)
	c := env.dial()
	b64 := base64.StdEncoding.EncodeToString
	c.send("a AUTHENTICATE LOGIN\r\n")
	if l := c.line(); l != "+ "+b64([]byte("Username:")) {
		t.Fatalf("challenge %q", l)
	}
	c.send(b64([]byte(testUser)) + "\r\n")
	if l := c.line(); l != "+ "+b64([]byte("Password:")) {
		t.Fatalf("challenge %q", l)
	}
	c.send(b64([]byte(testPass)) + "\r\n")
	c.expect("a OK [CAPABILITY")

	// With the user name as initial response.
	c2 := env.dial()
	c2.send("a AUTHENTICATE LOGIN " + b64([]byte(testUser)) + "\r\n")
	c2.expect("+ " + b64([]byte("Password:")))
	c2.send(b64([]byte(testPass)) + "\r\n")
	c2.expect("a OK [CAPABILITY")
}

func TestFailedLoginDelayGrows(t *testing.T) {
	env := startEnv(t, func(c *Config) {
		c.FailDelay = 40 * time.Millisecond
		c.FailDelayMax = 160 * time.Millisecond
		c.MaxAuthFailures = 5
	})
	c := env.dial()
	var took []time.Duration
	for i := range 5 {
		start := time.Now()
		c.send(fmt.Sprintf("a%d LOGIN alice wrong\r\n", i))
		c.expect(fmt.Sprintf("a%d NO [AUTHENTICATIONFAILED]", i))
		took = append(took, time.Since(start))
	}
	t.Logf("delays: %v", took)
	if took[0] < 40*time.Millisecond || took[2] < 160*time.Millisecond || took[4] < 160*time.Millisecond {
		t.Errorf("delays too short: %v", took)
	}
	if took[4] > 2*time.Second {
		t.Errorf("delay not capped: %v", took)
	}
	c.expect("* BYE") // too many failures
}

func TestIDBeforeAndAfterLogin(t *testing.T) {
	env := startEnv(t, func(c *Config) { c.NodeName = "node7" })
	c := env.dial()
	c.send(`a ID ("name" "testclient" "version" {3}` + "\r\n")
	c.expect("+ ")
	c.send("1.0)\r\n")
	l := c.expect("* ID")
	if !strings.Contains(l, `"name" "nfsimap"`) || !strings.Contains(l, `"environment" "node=node7"`) {
		t.Errorf("ID reply %q", l)
	}
	c.expect("a OK")
	if !env.logs.contains("name=testclient") {
		t.Error("client name not logged")
	}
	c.login()
	c.send("b ID NIL\r\n")
	c.expect("* ID (")
	c.expect("b OK")
	c.send("c ID (\"name\")\r\n")
	c.expect("c BAD")
}

func TestHandoffSelectAppendFetch(t *testing.T) {
	env := startEnv(t, nil)
	client, err := imapclient.DialInsecure(env.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.Login(testUser, testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	msg := "From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n"
	for range 3 {
		cmd := client.Append("INBOX", int64(len(msg)), nil)
		cmd.Write([]byte(msg))
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	sel, err := client.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 3 {
		t.Fatalf("%d messages", sel.NumMessages)
	}
	msgs, err := client.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		for _, b := range m.BodySection {
			if string(b.Bytes) != msg {
				t.Errorf("body %q", b.Bytes)
			}
		}
	}
	sorted, err := client.UIDSort(&imapclient.SortOptions{SearchCriteria: &imap.SearchCriteria{}, SortCriteria: []imapclient.SortCriterion{{Key: imapclient.SortKeyArrival}}}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sorted) != "[3 2 1]" {
		t.Errorf("SORT: %v", sorted)
	}
	if err := client.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestPipelinedAcrossLogin(t *testing.T) {
	env := startEnv(t, nil)
	c := env.dial()
	var sb strings.Builder
	fmt.Fprintf(&sb, "a LOGIN %s \"%s\"\r\nb SELECT INBOX\r\nc UID SORT (ARRIVAL) UTF-8 ALL\r\n", testUser, testPass)
	for i := range 200 {
		fmt.Fprintf(&sb, "n%d NOOP\r\n", i)
		if i%50 == 0 {
			fmt.Fprintf(&sb, "i%d ID NIL\r\n", i)
		}
	}
	sb.WriteString("z LOGOUT\r\n")
	c.send(sb.String())
	c.expect("a OK [CAPABILITY")
	c.expect("b OK")
	c.expect("* SORT")
	c.expect("c OK")
	for i := range 200 {
		c.expect(fmt.Sprintf("n%d OK", i))
		if i%50 == 0 {
			c.expect(fmt.Sprintf("i%d OK", i))
		}
	}
	c.expect("* BYE")
	c.expect("z OK")
}

func TestAppendLiteralPlusByteExact(t *testing.T) {
	env := startEnv(t, nil)
	c := env.dial()
	c.login()
	// A body with a line that looks like a command and a literal header.
	body := "Subject: x\r\n\r\nA1 CREATE evil\r\n{5}\r\n* 3 EXISTS\r\nend"
	c.send(fmt.Sprintf("b APPEND INBOX (\\Seen) {%d+}\r\n%s\r\n", len(body), body))
	c.expect("b OK")
	c.send("c SELECT INBOX\r\nd FETCH 1 BODY.PEEK[]\r\n")
	c.expect("c OK")
	hdr := c.expect("* 1 FETCH")
	want := fmt.Sprintf("{%d}", len(body))
	if !strings.HasSuffix(hdr, want) {
		t.Fatalf("FETCH line %q, want literal %s", hdr, want)
	}
	got := make([]byte, len(body))
	if _, err := io_ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != body {
		t.Errorf("body %q, want %q", got, body)
	}
	c.expect("d OK")
	c.send("e LIST \"\" *\r\n")
	for l := c.line(); !strings.HasPrefix(l, "e "); l = c.line() {
		if strings.Contains(l, "evil") {
			t.Errorf("message body ran as a command: %q", l)
		}
	}
}

func io_ReadFull(c *rawClient, b []byte) (int, error) {
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n := 0
	for n < len(b) {
		k, err := c.br.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestIdleUpdatePushed(t *testing.T) {
	env := startEnv(t, nil)
	updates := make(chan uint32, 10)
	client, err := imapclient.DialInsecure(env.addr, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages != nil {
					updates <- *data.NumMessages
				}
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.Login(testUser, testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := client.Idle()
	if err != nil {
		t.Fatal(err)
	}
	<-env.idling
	other := env.dial()
	other.login()
	msg := "Subject: new\r\n\r\nnew\r\n"
	// go-imap's memory backend drops an update that arrives between the
	// start of Idle and its registration: append until one is pushed.
	pushed := false
	for i := 0; i < 5 && !pushed; i++ {
		other.send(fmt.Sprintf("b%d APPEND INBOX {%d+}\r\n%s\r\n", i, len(msg), msg))
		other.expect(fmt.Sprintf("b%d OK", i))
		select {
		case n := <-updates:
			pushed = n >= 1
		case <-time.After(2 * time.Second):
		}
	}
	if !pushed {
		t.Fatal("no EXISTS pushed during IDLE")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := client.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestOversizeLiteralRefusedAndConsumed(t *testing.T) {
	env := startEnv(t, nil)
	c := env.dial()
	c.login()
	c.send("s SELECT INBOX\r\n")
	c.expect("s OK")
	evil := strings.Repeat("x1 CREATE evil\r\n", 400) // 6400 bytes
	// Synchronizing: refused without "+".
	c.send("a SEARCH TEXT {6400}\r\n")
	c.expect("a NO [TOOBIG]")
	// Non-synchronizing: refused, and its bytes are not run.
	c.send("b SEARCH TEXT {6400+}\r\n" + evil + "\r\n")
	c.expect("b NO [TOOBIG]")
	// Refused by go-imap itself (APPEND over the session's limit) after
	// the layer forwarded the header.
	c.send("c LOGOUT\r\n")
	c.expect("c OK")

	c2 := env.dialLimited()
	c2.send("d APPEND INBOX {6400+}\r\n" + evil + "\r\n")
	c2.expect("d NO [TOOBIG]")
	c2.send("e APPEND INBOX {6400}\r\n")
	c2.expect("e NO [TOOBIG]")
	c2.send("f LIST \"\" *\r\n")
	for l := c2.line(); !strings.HasPrefix(l, "f "); l = c2.line() {
		if strings.Contains(l, "evil") {
			t.Errorf("refused literal ran as a command: %q", l)
		}
	}
	if env.logs.contains("evil") {
		t.Error("evil command seen in the logs")
	}
}

// dialLimited logs in as "limited", whose session has a 1000-byte APPEND
// limit.
func (e *testEnv) dialLimited() *rawClient {
	c := e.dial()
	c.send("L LOGIN limited pw\r\n")
	c.expect("L OK")
	return c
}

func TestLongLineBad(t *testing.T) {
	env := startEnv(t, func(c *Config) { c.MaxLineLength = 2000 })
	c := env.dial()
	c.send("a NOOP " + strings.Repeat("x", 5000) + "\r\n")
	c.expect("* BAD [TOOBIG]")
	c.send("b NOOP\r\n")
	c.expect("b OK")
	c.login()
	c.send("c NOOP " + strings.Repeat("x", 5000) + " {10+}\r\n0123456789\r\n")
	c.expect("* BAD [TOOBIG]")
	c.send("d NOOP\r\n")
	c.expect("d OK")
}

func TestShutdownSaysBye(t *testing.T) {
	env := startEnv(t, nil)
	pre := env.dial()
	idle := env.dial()
	idle.login()
	idle.send("s SELECT INBOX\r\n")
	idle.expect("s OK")
	waiting := env.dial()
	waiting.login()
	idle.send("i IDLE\r\n")
	idle.expect("+ ")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- env.f.Shutdown(ctx) }()
	pre.expect("* BYE [UNAVAILABLE]")
	idle.expect("* BYE [UNAVAILABLE]")
	waiting.expect("* BYE [UNAVAILABLE]")
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if n := env.f.Conns(); n != 0 {
		t.Errorf("%d connections left", n)
	}
}

func TestPreAuthTimeout(t *testing.T) {
	env := startEnv(t, func(c *Config) { c.PreAuthTimeout = 200 * time.Millisecond })
	c := env.dial()
	c.expect("* BYE")
}

func TestPythonImaplib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	env := startEnv(t, nil)
	host, port, _ := strings.Cut(env.addr, ":")
	script := `
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
msg = b"Subject: py\r\n\r\nfrom python\r\n"
typ, _ = m.append("INBOX", None, None, msg)
assert typ == "OK", typ
typ, data = m.select("INBOX")
assert typ == "OK", typ
typ, data = m.fetch(data[0].decode(), "(BODY.PEEK[])")
assert typ == "OK", typ
assert data[0][1] == msg, data
typ, data = m.uid("SORT", "(REVERSE ARRIVAL)", "UTF-8", "ALL")
assert typ == "OK", (typ, data)
typ, data = m.xatom("ID", '("name" "imaplib")')
assert typ == "OK", typ
m.logout()
print("ok")
`
	out, err := exec.Command(py, "-c", script, host, port, testUser, testPass).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("ok")) {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
}

// TestLiteralPaths drives literals through each state of the command
// layer: accepted synchronizing and non-synchronizing literals, literals in
// commands the layer answers, and literals of commands go-imap refuses.
func TestLiteralPaths(t *testing.T) {
	env := startEnv(t, nil)
	c := env.dial()
	c.login()
	msg := "Subject: findme\r\n\r\nneedle\r\n"
	c.send(fmt.Sprintf("a APPEND INBOX {%d}\r\n", len(msg)))
	c.expect("+ ")
	c.send(msg + "\r\n")
	c.expect("a OK")
	c.send("s SELECT INBOX\r\n")
	c.expect("s OK")

	c.send("b SEARCH TEXT {6}\r\n")
	c.expect("+ ")
	c.send("needle\r\n")
	if l := c.expect("* SEARCH"); l != "* SEARCH 1" {
		t.Errorf("search: %q", l)
	}
	c.expect("b OK")

	c.send("c SEARCH TEXT {6+}\r\nneedle SUBJECT {6+}\r\nfindme\r\n")
	if l := c.expect("* SEARCH"); l != "* SEARCH 1" {
		t.Errorf("search: %q", l)
	}
	c.expect("c OK")

	c.send("d UID SORT (SUBJECT) UTF-8 TEXT {6}\r\n")
	c.expect("+ ")
	c.send("needle\r\n")
	if l := c.expect("* SORT"); l != "* SORT 1" {
		t.Errorf("sort: %q", l)
	}
	c.expect("d OK")

	c.send("e THREAD REFERENCES UTF-8 ALL\r\n")
	if l := c.expect("* THREAD"); l != "* THREAD (1 2)" {
		t.Errorf("thread: %q", l)
	}
	c.expect("e OK")

	// go-imap refuses the command before the literal: the literal's
	// bytes must be dropped, not run.
	c.send("f FETCH xyz {16+}\r\nx1 CREATE evil\r\n\r\n")
	c.expect("f ") // go-imap says NO [SERVERBUG] to this syntax error
	c.send("g FETCH xyz {16}\r\n")
	c.expect("g ")
	// APPEND to a missing mailbox with a non-synchronizing literal.
	c.send(fmt.Sprintf("h APPEND Nowhere {%d+}\r\n%s\r\n", 16, "x2 CREATE evil\r\n"))
	c.expect("h NO")
	c.send("i LIST \"\" *\r\n")
	for l := c.line(); !strings.HasPrefix(l, "i "); l = c.line() {
		if strings.Contains(l, "evil") {
			t.Errorf("literal ran as a command: %q", l)
		}
	}
	c.send("j SORT (BOGUS) UTF-8 ALL\r\n")
	c.expect("j BAD")
	c.send("k SORT (ARRIVAL) KOI8-XX ALL\r\n")
	c.expect("k NO [BADCHARSET")
	c.send("l NOOP\r\n")
	c.expect("l OK")
}

func TestAuthenticatedIdleTimeout(t *testing.T) {
	env := startEnv(t, func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
	c := env.dial()
	c.login()
	start := time.Now()
	c.expect("* BYE Autologout")
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("logged out after %v", d)
	}
}

func TestIdleKeepalive(t *testing.T) {
	env := startEnv(t, func(c *Config) { c.IdleKeepalive = 100 * time.Millisecond })
	c := env.dial()
	c.login()
	c.send("s SELECT INBOX\r\n")
	c.expect("s OK")
	c.send("i IDLE\r\n")
	c.expect("+ ")
	c.expect("* OK Still here")
	c.expect("* OK Still here")
	c.send("DONE\r\n")
	c.expect("i OK")
	c.send("n NOOP\r\n")
	c.expect("n OK")
}
