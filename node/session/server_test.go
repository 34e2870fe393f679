package session

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/nfsimap/nfsimap/node/auth"
	"github.com/nfsimap/nfsimap/node/front"
)

// panicLogger is go-imap's server logger in tests: go-imap recovers panics
// in command handlers and IDLE and logs them; such a log fails the test.
type panicLogger struct {
	t testing.TB
}

func (l panicLogger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if strings.Contains(msg, "panic") {
		l.t.Errorf("server panic: %s", msg)
		return
	}
	l.t.Logf("imapserver: %s", msg)
}

// testEnv is a real go-imap server with our sessions on a loopback port,
// over a temporary spool.
type testEnv struct {
	t     testing.TB
	spool string
	f     *Factory
	ln    net.Listener
	srv   *imapserver.Server
	user  *auth.User
}

func testConfig(spool string) Config {
	cfg := DefaultConfig()
	cfg.Layout.Inbox = spool + "/%u/Maildir"
	cfg.Maildir.NoFsync = true
	cfg.PollInterval = 100 * time.Millisecond
	cfg.MinSyncInterval = -1
	cfg.SpecialUse = map[string]imap.MailboxAttr{"Sent": imap.MailboxAttrSent, "Trash": "\\trash"}
	cfg.AppendLimit = 1 << 20
	return cfg
}

func newTestEnv(t testing.TB, mod func(*Config)) *testEnv {
	t.Helper()
	spool := t.TempDir()
	cfg := testConfig(spool)
	cfg.Index = openTestIndex(t, t.TempDir())
	if mod != nil {
		mod(&cfg)
	}
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	f, err := NewFactory(cfg, logger)
	if err != nil {
		t.Fatalf("NewFactory: %v", err)
	}
	env := &testEnv{t: t, spool: spool, f: f, user: &auth.User{Name: "alice", UID: -1, GID: -1}}
	env.srv = imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			s, err := f.New(t.Context(), env.user, front.ConnInfo{ID: "test", Remote: c.NetConn().RemoteAddr()})
			if err != nil {
				return nil, nil, err
			}
			return s, &imapserver.GreetingData{PreAuth: true}, nil
		},
		Caps: imap.CapSet{
			imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}, imap.CapNamespace: {}, imap.CapUIDPlus: {},
			imap.CapESearch: {}, imap.CapSearchRes: {}, imap.CapListExtended: {}, imap.CapListStatus: {},
			imap.CapMove: {}, imap.CapStatusSize: {}, imap.CapBinary: {}, imap.CapChildren: {},
			imap.CapSpecialUse: {}, imap.CapLiteralPlus: {},
		},
		InsecureAuth: true,
		Logger:       panicLogger{t},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	env.ln = ln
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := env.srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Logf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		env.srv.Close()
		<-done
		// Every session is closed: no mailbox state may be left.
		deadline := time.Now().Add(5 * time.Second)
		for {
			f.reg.boxesMu.Lock()
			n := len(f.reg.boxes)
			f.reg.boxesMu.Unlock()
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%d mailbox states left after all sessions closed", n)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	return env
}

func (env *testEnv) inbox() string { return filepath.Join(env.spool, "alice", "Maildir") }

// updates records unsolicited responses for a client.
type updates struct {
	mu     sync.Mutex
	events []string
	cond   chan struct{}
}

func newUpdates() *updates { return &updates{cond: make(chan struct{}, 1)} }

func (u *updates) add(ev string) {
	u.mu.Lock()
	u.events = append(u.events, ev)
	u.mu.Unlock()
	select {
	case u.cond <- struct{}{}:
	default:
	}
}

// wait waits until an event containing want arrives (or has arrived) and
// removes the events up to it.
func (u *updates) wait(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		u.mu.Lock()
		for i, ev := range u.events {
			if strings.Contains(ev, want) {
				u.events = u.events[i+1:]
				u.mu.Unlock()
				return
			}
		}
		evs := slices.Clone(u.events)
		u.mu.Unlock()
		select {
		case <-u.cond:
		case <-deadline:
			t.Fatalf("no update %q; got %q", want, evs)
		}
	}
}

func (u *updates) handler() *imapclient.UnilateralDataHandler {
	return &imapclient.UnilateralDataHandler{
		Expunge: func(seq uint32) { u.add(fmt.Sprintf("EXPUNGE %d", seq)) },
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				u.add(fmt.Sprintf("EXISTS %d", *d.NumMessages))
			}
			if d.Flags != nil {
				u.add(fmt.Sprintf("MAILBOX FLAGS %v", d.Flags))
			}
		},
		Fetch: func(msg *imapclient.FetchMessageData) {
			buf, err := msg.Collect()
			if err != nil {
				u.add("FETCH error " + err.Error())
				return
			}
			u.add(fmt.Sprintf("FETCH %d FLAGS %v", buf.SeqNum, buf.Flags))
		},
	}
}

func (env *testEnv) dial(u *updates) *imapclient.Client {
	env.t.Helper()
	conn, err := net.Dial("tcp", env.ln.Addr().String())
	if err != nil {
		env.t.Fatalf("dial: %v", err)
	}
	opts := &imapclient.Options{}
	if u != nil {
		opts.UnilateralDataHandler = u.handler()
	}
	c := imapclient.New(conn, opts)
	if err := c.WaitGreeting(); err != nil {
		env.t.Fatalf("greeting: %v", err)
	}
	if c.State() != imap.ConnStateAuthenticated {
		env.t.Fatalf("state after PREAUTH: %v", c.State())
	}
	env.t.Cleanup(func() { c.Close() })
	return c
}

// deliver drops a message into new/ the way an MTA does (tmp, rename).
func deliver(t *testing.T, maildir, name, content string) {
	t.Helper()
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(maildir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(maildir, "tmp", name)
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(maildir, "new", name)); err != nil {
		t.Fatal(err)
	}
}

func imapCode(err error) imap.ResponseCode {
	var imapErr *imap.Error
	if errors.As(err, &imapErr) {
		return imapErr.Code
	}
	return ""
}

func mustSelect(t *testing.T, c *imapclient.Client, name string, readOnly bool) *imap.SelectData {
	t.Helper()
	d, err := c.Select(name, &imap.SelectOptions{ReadOnly: readOnly}).Wait()
	if err != nil {
		t.Fatalf("select %s: %v", name, err)
	}
	return d
}

func appendMsg(t *testing.T, c *imapclient.Client, mailbox, content string, opts *imap.AppendOptions) *imap.AppendData {
	t.Helper()
	cmd := c.Append(mailbox, int64(len(content)), opts)
	if _, err := io.WriteString(cmd, content); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := cmd.Wait()
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return d
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func fetchOne(t *testing.T, c *imapclient.Client, set imap.NumSet, opts *imap.FetchOptions) *imapclient.FetchMessageBuffer {
	t.Helper()
	msgs, err := c.Fetch(set, opts).Collect()
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if len(msgs) != 1 {
		t.Fatalf("fetch returned %d messages", len(msgs))
	}
	return msgs[0]
}

const lfMessage = "From: Jörg <jorg@example.org>\n" +
	"To: alice@example.com\n" +
	"Subject: lf only\n" +
	"Date: Tue, 03 Feb 2026 10:00:00 +0100\n" +
	"Message-ID: <lf@example.org>\n" +
	"\n" +
	"line one\n" +
	"line two\n"

func TestExamineThenSelect(t *testing.T) {
	env := newTestEnv(t, nil)
	deliver(t, env.inbox(), "1700000000.M1P1.mta", lfMessage)
	c := env.dial(nil)

	d := mustSelect(t, c, "INBOX", true)
	if d.NumMessages != 1 || d.UIDValidity == 0 || d.UIDNext != 2 {
		t.Fatalf("EXAMINE data %+v", d)
	}
	// EXAMINE and a body fetch in it leave the spool's messages alone.
	msg := fetchOne(t, c, imap.SeqSetNum(1), &imap.FetchOptions{
		Flags: true, RFC822Size: true, UID: true,
		BodySection: []*imap.FetchItemBodySection{{}},
	})
	body := msg.FindBodySection(&imap.FetchItemBodySection{})
	if string(body) != strings.ReplaceAll(lfMessage, "\n", "\r\n") {
		t.Errorf("BODY[] = %q", body)
	}
	if msg.RFC822Size != int64(len(body)) {
		t.Errorf("RFC822.SIZE %d, BODY[] has %d bytes", msg.RFC822Size, len(body))
	}
	if slices.Contains(msg.Flags, imap.FlagSeen) {
		t.Errorf("EXAMINE fetch set \\Seen: %v", msg.Flags)
	}
	if got := listDir(t, filepath.Join(env.inbox(), "new")); len(got) != 1 {
		t.Errorf("new/ after EXAMINE: %v", got)
	}
	if _, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Collect(); err == nil {
		t.Error("STORE in an EXAMINEd mailbox succeeded")
	}
	if err := c.UnselectAndExpunge().Wait(); err != nil {
		t.Fatalf("CLOSE after EXAMINE: %v", err)
	}

	d = mustSelect(t, c, "INBOX", false)
	if d.NumMessages != 1 {
		t.Fatalf("SELECT data %+v", d)
	}
	if got := listDir(t, filepath.Join(env.inbox(), "new")); len(got) != 0 {
		t.Errorf("new/ after SELECT: %v", got)
	}
	if got := listDir(t, filepath.Join(env.inbox(), "cur")); len(got) != 1 {
		t.Errorf("cur/ after SELECT: %v", got)
	}
	// A body fetch without PEEK sets \Seen and reports it.
	msg = fetchOne(t, c, imap.SeqSetNum(1), &imap.FetchOptions{
		BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierText}},
	})
	if !slices.Contains(msg.Flags, imap.FlagSeen) {
		t.Errorf("FLAGS after BODY[TEXT]: %v", msg.Flags)
	}
	if got := string(msg.FindBodySection(&imap.FetchItemBodySection{Specifier: imap.PartSpecifierText})); got != "line one\r\nline two\r\n" {
		t.Errorf("BODY[TEXT] = %q", got)
	}
	cur := listDir(t, filepath.Join(env.inbox(), "cur"))
	if len(cur) != 1 || !strings.HasSuffix(cur[0], ":2,S") {
		t.Errorf("cur/ after \\Seen: %v", cur)
	}
}

const mimeMessage = "From: =?iso-8859-1?q?J=F6rg?= <jorg@example.org>, bob@example.net\r\n" +
	"To: alice@example.com\r\n" +
	"Subject: =?utf-8?q?caf=C3=A9?=\r\n" +
	"Date: Tue, 03 Feb 2026 10:00:00 +0100\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=BB\r\n" +
	"\r\n" +
	"--BB\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"hello\r\n" +
	"--BB\r\n" +
	"Content-Type: application/octet-stream\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"aGVsbG8gYmluYXJ5\r\n" +
	"--BB--\r\n"

func TestFetchItems(t *testing.T) {
	env := newTestEnv(t, nil)
	c := env.dial(nil)
	date := time.Date(2025, 12, 24, 18, 30, 0, 0, time.FixedZone("", 3600))
	ad := appendMsg(t, c, "INBOX", mimeMessage, &imap.AppendOptions{Flags: []imap.Flag{imap.FlagDraft, "$Work"}, Time: date})
	if ad.UID != 1 || ad.UIDValidity == 0 {
		t.Fatalf("APPENDUID %+v", ad)
	}
	mustSelect(t, c, "INBOX", false)
	hdrFields := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}, Peek: true}
	part1 := &imap.FetchItemBodySection{Part: []int{1}, Peek: true}
	part2mime := &imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierMIME, Peek: true}
	partial := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 6, Size: 4}}
	header := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
	headerNot := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"Subject", "From", "To", "Date", "MIME-Version"}, Peek: true}
	bin := &imap.FetchItemBinarySection{Part: []int{2}, Peek: true}
	msg := fetchOne(t, c, imap.UIDSetNum(1), &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, RFC822Size: true, Envelope: true,
		BodyStructure:     &imap.FetchItemBodyStructure{Extended: true},
		BodySection:       []*imap.FetchItemBodySection{hdrFields, part1, part2mime, partial, header, headerNot},
		BinarySection:     []*imap.FetchItemBinarySection{bin},
		BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{2}}},
	})
	if msg.UID != 1 {
		t.Errorf("UID %d", msg.UID)
	}
	if !slices.Contains(msg.Flags, imap.FlagDraft) || !slices.Contains(msg.Flags, "$Work") || slices.Contains(msg.Flags, imap.FlagSeen) {
		t.Errorf("FLAGS %v", msg.Flags)
	}
	if !msg.InternalDate.Equal(date) {
		t.Errorf("INTERNALDATE %v, want %v", msg.InternalDate, date)
	}
	if msg.RFC822Size != int64(len(mimeMessage)) {
		t.Errorf("RFC822.SIZE %d, want %d", msg.RFC822Size, len(mimeMessage))
	}
	env1 := msg.Envelope
	if env1 == nil || env1.Subject != "café" || len(env1.From) != 2 || env1.From[0].Name != "Jörg" || env1.From[0].Host != "example.org" {
		t.Errorf("ENVELOPE %+v", env1)
	}
	mp, ok := msg.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || len(mp.Children) != 2 || mp.Subtype != "mixed" {
		t.Errorf("BODYSTRUCTURE %#v", msg.BodyStructure)
	}
	if got := string(msg.FindBodySection(hdrFields)); got != "Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\n" {
		t.Errorf("HEADER.FIELDS = %q", got)
	}
	if got := string(msg.FindBodySection(part1)); got != "hello" {
		t.Errorf("BODY[1] = %q", got)
	}
	if got := string(msg.FindBodySection(part2mime)); !strings.Contains(got, "Content-Transfer-Encoding: base64") {
		t.Errorf("BODY[2.MIME] = %q", got)
	}
	if got := string(msg.FindBodySection(partial)); got != "=?is" {
		t.Errorf("BODY[]<6.4> = %q", got)
	}
	if got := string(msg.FindBodySection(header)); !strings.HasSuffix(got, "boundary=BB\r\n\r\n") || strings.Contains(got, "hello") {
		t.Errorf("BODY[HEADER] = %q", got)
	}
	if got := string(msg.FindBodySection(headerNot)); got != "Content-Type: multipart/mixed; boundary=BB\r\n\r\n" {
		t.Errorf("HEADER.FIELDS.NOT = %q", got)
	}
	if got := string(msg.FindBinarySection(bin)); got != "hello binary" {
		t.Errorf("BINARY[2] = %q", got)
	}
	if got, ok := msg.FindBinarySectionSize([]int{2}); !ok || got != uint32(len("hello binary")) {
		t.Errorf("BINARY.SIZE[2] = %d", got)
	}
	// RFC822 (non-peek) sets \Seen.
	msg = fetchOne(t, c, imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}})
	if !slices.Contains(msg.Flags, imap.FlagSeen) {
		t.Errorf("no \\Seen after BODY[]: %v", msg.Flags)
	}
	// Sequence numbers beyond the mailbox are refused.
	if _, err := c.Fetch(imap.SeqSetNum(5), &imap.FetchOptions{Flags: true}).Collect(); err == nil {
		t.Error("FETCH 5 of 1 message succeeded")
	}
}

func TestStoreExpungeClose(t *testing.T) {
	env := newTestEnv(t, nil)
	c := env.dial(nil)
	for i := 0; i < 5; i++ {
		appendMsg(t, c, "INBOX", fmt.Sprintf("Subject: m%d\r\n\r\nbody %d\r\n", i, i), nil)
	}
	mustSelect(t, c, "INBOX", false)
	msgs, err := c.Store(imap.SeqSetNum(1, 2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted, "$Label1"}}, nil).Collect()
	if err != nil || len(msgs) != 2 {
		t.Fatalf("STORE +FLAGS: %v %v", msgs, err)
	}
	if !slices.Contains(msgs[0].Flags, "$Label1") || !slices.Contains(msgs[0].Flags, imap.FlagDeleted) {
		t.Errorf("flags after STORE %v", msgs[0].Flags)
	}
	kw, err := os.ReadFile(filepath.Join(env.inbox(), "dovecot-keywords"))
	if err != nil || !strings.Contains(string(kw), "$Label1") {
		t.Errorf("dovecot-keywords %q %v", kw, err)
	}
	msgs, err = c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsDel, Flags: []imap.Flag{"$Label1"}}, nil).Collect()
	if err != nil || len(msgs) != 1 || slices.Contains(msgs[0].Flags, "$Label1") {
		t.Fatalf("STORE -FLAGS: %v %v", msgs, err)
	}
	msgs, err = c.Store(imap.SeqSetNum(5), &imap.StoreFlags{Op: imap.StoreFlagsSet, Silent: true, Flags: []imap.Flag{imap.FlagDeleted, imap.FlagSeen}}, nil).Collect()
	if err != nil || len(msgs) != 0 {
		t.Fatalf("STORE FLAGS.SILENT: %v %v", msgs, err)
	}
	if _, err := c.Store(imap.SeqSetNum(5), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"\\Bogus"}}, nil).Collect(); err == nil {
		t.Error("STORE of an unknown system flag succeeded")
	}
	// UID EXPUNGE removes only the given deleted message.
	data, err := c.UIDExpunge(imap.UIDSetNum(2)).Collect()
	if err != nil || len(data) != 1 || data[0] != 2 {
		t.Fatalf("UID EXPUNGE: %v %v", data, err)
	}
	// EXPUNGE: the remaining deleted messages are 1 and 4 (was 5).
	data, err = c.Expunge().Collect()
	if err != nil || len(data) != 2 {
		t.Fatalf("EXPUNGE: %v %v", data, err)
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || *st.NumMessages != 2 {
		t.Fatalf("STATUS after EXPUNGE: %+v %v", st, err)
	}
	// CLOSE expunges silently.
	if _, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if err := c.UnselectAndExpunge().Wait(); err != nil {
		t.Fatalf("CLOSE: %v", err)
	}
	if n := len(listDir(t, filepath.Join(env.inbox(), "cur"))); n != 1 {
		t.Errorf("%d files left after CLOSE, want 1", n)
	}
	// UNSELECT does not expunge.
	mustSelect(t, c, "INBOX", false)
	if _, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	if n := len(listDir(t, filepath.Join(env.inbox(), "cur"))); n != 1 {
		t.Errorf("%d files left after UNSELECT, want 1", n)
	}
}

func TestCopyMoveAppendErrors(t *testing.T) {
	env := newTestEnv(t, nil)
	c := env.dial(nil)
	for i := 0; i < 3; i++ {
		appendMsg(t, c, "INBOX", fmt.Sprintf("Subject: m%d\r\n\r\nbody\r\n", i), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagFlagged}})
	}
	if err := c.Create("Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	mustSelect(t, c, "INBOX", false)
	_, err := c.Copy(imap.SeqSetNum(1), "Nope").Wait()
	if imapCode(err) != imap.ResponseCodeTryCreate {
		t.Errorf("COPY to missing mailbox: %v", err)
	}
	cd, err := c.Copy(imap.SeqSetNum(1, 2), "Archive").Wait()
	if err != nil || cd.UIDValidity == 0 || cd.SourceUIDs.String() != "1:2" || cd.DestUIDs.String() != "1:2" {
		t.Fatalf("COPY: %+v %v", cd, err)
	}
	md, err := c.Move(imap.SeqSetNum(3), "Archive").Wait()
	if err != nil || md.SourceUIDs.String() != "3" || md.DestUIDs.String() != "3" {
		t.Fatalf("MOVE: %+v %v", md, err)
	}
	if mb := c.Mailbox(); mb == nil || mb.NumMessages != 2 {
		t.Errorf("after MOVE the client counts %+v", mb)
	}
	st, err := c.Status("Archive", &imap.StatusOptions{NumMessages: true, UIDNext: true}).Wait()
	if err != nil || *st.NumMessages != 3 || st.UIDNext != 4 {
		t.Fatalf("STATUS Archive: %+v %v", st, err)
	}
	mustSelect(t, c, "Archive", false)
	msg := fetchOne(t, c, imap.SeqSetNum(3), &imap.FetchOptions{Flags: true, UID: true})
	if !slices.Contains(msg.Flags, imap.FlagFlagged) {
		t.Errorf("flags of the moved message %v", msg.Flags)
	}
	// APPEND to a missing mailbox and over the limit.
	cmd := c.Append("Nope", 3, nil)
	io.WriteString(cmd, "x\r\n")
	cmd.Close()
	if _, err := cmd.Wait(); imapCode(err) != imap.ResponseCodeTryCreate {
		t.Errorf("APPEND to missing mailbox: %v", err)
	}
	big := strings.Repeat("x", 2<<20)
	cmd = c.Append("INBOX", int64(len(big)), nil)
	io.WriteString(cmd, big)
	cmd.Close()
	if _, err := cmd.Wait(); imapCode(err) != imap.ResponseCodeTooBig {
		t.Errorf("APPEND over the limit: %v", err)
	}
}

func TestMailboxCommands(t *testing.T) {
	env := newTestEnv(t, nil)
	c := env.dial(nil)
	for _, name := range []string{"Sent", "Trash", "Work.Projects", "Entwürfe"} {
		if err := c.Create(name, nil).Wait(); err != nil {
			t.Fatalf("CREATE %s: %v", name, err)
		}
	}
	if err := c.Create("Sent", nil).Wait(); imapCode(err) != imap.ResponseCodeAlreadyExists {
		t.Errorf("CREATE existing: %v", err)
	}
	if err := c.Create("INBOX", nil).Wait(); imapCode(err) != imap.ResponseCodeAlreadyExists {
		t.Errorf("CREATE INBOX: %v", err)
	}
	// The folder is stored in modified UTF-7, as Dovecot stores it.
	if _, err := os.Stat(filepath.Join(env.inbox(), ".Entw&APw-rfe")); err != nil {
		t.Errorf("UTF-7 folder: %v", err)
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]imap.MailboxAttr{}
	var order []string
	for _, l := range list {
		got[l.Mailbox] = l.Attrs
		order = append(order, l.Mailbox)
		if l.Delim != '.' {
			t.Errorf("delimiter %q", l.Delim)
		}
	}
	if len(order) == 0 || order[0] != "INBOX" {
		t.Errorf("LIST order %v", order)
	}
	for _, name := range []string{"INBOX", "Sent", "Trash", "Work", "Work.Projects", "Entwürfe"} {
		if _, ok := got[name]; !ok {
			t.Errorf("LIST misses %s: %v", name, order)
		}
	}
	if !slices.Contains(got["Sent"], imap.MailboxAttrSent) || !slices.Contains(got["Trash"], imap.MailboxAttrTrash) {
		t.Errorf("special use: %v %v", got["Sent"], got["Trash"])
	}
	if !slices.Contains(got["Work"], imap.MailboxAttrNoSelect) || !slices.Contains(got["Work"], imap.MailboxAttrHasChildren) {
		t.Errorf("Work attrs %v", got["Work"])
	}
	list, err = c.List("", "%", nil).Collect()
	if err != nil || slices.ContainsFunc(list, func(l *imap.ListData) bool { return l.Mailbox == "Work.Projects" }) {
		t.Errorf("LIST %%: %v %v", list, err)
	}
	list, err = c.List("", "*", &imap.ListOptions{SelectSpecialUse: true}).Collect()
	if err != nil || len(list) != 2 {
		t.Errorf("LIST (SPECIAL-USE): %v %v", list, err)
	}
	// SUBSCRIBE, LIST (SUBSCRIBED), LSUB-like selection of absent names.
	for _, name := range []string{"Sent", "Gone"} {
		if err := c.Subscribe(name).Wait(); err != nil {
			t.Fatalf("SUBSCRIBE %s: %v", name, err)
		}
	}
	list, err = c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil || len(list) != 2 {
		t.Fatalf("LIST (SUBSCRIBED): %v %v", list, err)
	}
	for _, l := range list {
		if !slices.Contains(l.Attrs, imap.MailboxAttrSubscribed) {
			t.Errorf("%s lacks \\Subscribed: %v", l.Mailbox, l.Attrs)
		}
		if l.Mailbox == "Gone" && !slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) {
			t.Errorf("Gone lacks \\NonExistent: %v", l.Attrs)
		}
	}
	if err := c.Unsubscribe("Gone").Wait(); err != nil {
		t.Fatal(err)
	}
	// LIST-STATUS.
	appendMsg(t, c, "Sent", "Subject: s\r\n\r\nsent\r\n", nil)
	list, err = c.List("", "Sent", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true, NumUnseen: true}}).Collect()
	if err != nil || len(list) != 1 || list[0].Status == nil || *list[0].Status.NumMessages != 1 {
		t.Fatalf("LIST RETURN (STATUS): %v %v", list, err)
	}
	// STATUS with every item.
	st, err := c.Status("Sent", &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true, NumDeleted: true, Size: true}).Wait()
	if err != nil || *st.NumMessages != 1 || *st.NumUnseen != 1 || st.UIDNext != 2 || st.UIDValidity == 0 || *st.Size != int64(len("Subject: s\r\n\r\nsent\r\n")) {
		t.Fatalf("STATUS: %+v %v", st, err)
	}
	if _, err := c.Status("Nope", &imap.StatusOptions{NumMessages: true}).Wait(); imapCode(err) != imap.ResponseCodeNonExistent {
		t.Errorf("STATUS of missing mailbox: %v", err)
	}
	// RENAME with children, DELETE.
	if err := c.Rename("Work", "Job", nil).Wait(); err != nil {
		// Work is only an implied parent: rename its child instead.
		if err := c.Rename("Work.Projects", "Job.Projects", nil).Wait(); err != nil {
			t.Fatalf("RENAME: %v", err)
		}
	}
	if _, err := c.Status("Job.Projects", &imap.StatusOptions{NumMessages: true}).Wait(); err != nil {
		t.Errorf("renamed folder: %v", err)
	}
	if err := c.Delete("Job.Projects").Wait(); err != nil {
		t.Errorf("DELETE: %v", err)
	}
	if err := c.Delete("Job.Projects").Wait(); imapCode(err) != imap.ResponseCodeNonExistent {
		t.Errorf("DELETE again: %v", err)
	}
	if err := c.Delete("INBOX").Wait(); err == nil {
		t.Error("DELETE INBOX succeeded")
	}
	// RENAME INBOX moves its messages.
	appendMsg(t, c, "INBOX", "Subject: i\r\n\r\ninbox\r\n", nil)
	if err := c.Rename("INBOX", "Old", nil).Wait(); err != nil {
		t.Fatalf("RENAME INBOX: %v", err)
	}
	st, err = c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || *st.NumMessages != 0 {
		t.Errorf("INBOX after RENAME: %+v %v", st, err)
	}
	st, err = c.Status("Old", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || *st.NumMessages != 1 {
		t.Errorf("Old after RENAME: %+v %v", st, err)
	}
	ns, err := c.Namespace().Wait()
	if err != nil || len(ns.Personal) != 1 || ns.Personal[0].Delim != '.' || ns.Personal[0].Prefix != "" {
		t.Errorf("NAMESPACE %+v %v", ns, err)
	}
	if _, err := c.Select("Nope", nil).Wait(); imapCode(err) != imap.ResponseCodeNonExistent {
		t.Errorf("SELECT missing: %v", err)
	}
}

func TestTwoSessionsSeeEachOther(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.PollInterval = time.Hour }) // only this node's changes
	c1 := env.dial(nil)
	u2 := newUpdates()
	c2 := env.dial(u2)
	for i := 0; i < 3; i++ {
		appendMsg(t, c1, "INBOX", fmt.Sprintf("Subject: m%d\r\n\r\nbody\r\n", i), nil)
	}
	mustSelect(t, c1, "INBOX", false)
	mustSelect(t, c2, "INBOX", false)

	// APPEND by one session: EXISTS in the other at its next command.
	appendMsg(t, c1, "INBOX", "Subject: new\r\n\r\nnew\r\n", nil)
	if err := c2.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	u2.wait(t, "EXISTS 4")
	// STORE: FETCH FLAGS.
	if _, err := c1.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if err := c2.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	u2.wait(t, "FETCH 2 FLAGS [\\Deleted]")
	// A new keyword changes the mailbox's FLAGS too.
	if _, err := c1.Store(imap.SeqSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"$Fresh"}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if err := c2.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	u2.wait(t, "MAILBOX FLAGS [\\Answered \\Flagged \\Deleted \\Seen \\Draft $Fresh]")
	// EXPUNGE: not sent during FETCH (RFC 3501 7.4.1), sent at NOOP.
	if _, err := c1.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c2.Fetch(imap.SeqSetNum(2), &imap.FetchOptions{Flags: true, UID: true}).Collect()
	if err != nil {
		t.Fatalf("FETCH of an expunged message not yet announced: %v", err)
	}
	if len(msgs) > 1 {
		t.Errorf("FETCH returned %d messages", len(msgs))
	}
	if err := c2.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	u2.wait(t, "EXPUNGE 2")
	if mb := c2.Mailbox(); mb.NumMessages != 3 {
		t.Errorf("c2 counts %d messages", mb.NumMessages)
	}

	// IDLE: pushed at once.
	idle, err := c2.Idle()
	if err != nil {
		t.Fatal(err)
	}
	appendMsg(t, c1, "INBOX", "Subject: pushed\r\n\r\npushed\r\n", nil)
	u2.wait(t, "EXISTS 4")
	if _, err := c1.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	u2.wait(t, "FETCH 1 FLAGS [\\Flagged]")
	if _, err := c1.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	u2.wait(t, "EXPUNGE 1")
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	// Both views agree.
	uids := func(c *imapclient.Client) string {
		d, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		return d.All.String()
	}
	if a, b := uids(c1), uids(c2); a != b || a != "3:5" {
		t.Errorf("views differ: %q %q", a, b)
	}
}

func TestDeliveryNoticedByPoller(t *testing.T) {
	env := newTestEnv(t, nil) // PollInterval 100 ms
	u := newUpdates()
	c := env.dial(u)
	mustSelect(t, c, "INBOX", false)
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, env.inbox(), "1700000001.M2P2.mta", lfMessage)
	u.wait(t, "EXISTS 1")
	// A flag change by another program (a rename in cur/) shows as FETCH.
	cur := listDir(t, filepath.Join(env.inbox(), "cur"))
	newDir := listDir(t, filepath.Join(env.inbox(), "new"))
	var from string
	switch {
	case len(cur) == 1:
		from = filepath.Join(env.inbox(), "cur", cur[0])
	case len(newDir) == 1:
		from = filepath.Join(env.inbox(), "new", newDir[0])
	default:
		t.Fatalf("message not found: cur %v new %v", cur, newDir)
	}
	unique, _, _ := strings.Cut(filepath.Base(from), ":")
	if err := os.Rename(from, filepath.Join(env.inbox(), "cur", unique+":2,F")); err != nil {
		t.Fatal(err)
	}
	u.wait(t, "\\Flagged")
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	// RFC822.SIZE of the LF-only file is the size of what BODY[] sends.
	msg := fetchOne(t, c, imap.SeqSetNum(1), &imap.FetchOptions{RFC822Size: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	if body := msg.FindBodySection(&imap.FetchItemBodySection{Peek: true}); msg.RFC822Size != int64(len(body)) || len(body) != len(lfMessage)+strings.Count(lfMessage, "\n") {
		t.Errorf("RFC822.SIZE %d, BODY[] %d bytes", msg.RFC822Size, len(body))
	}
}

func TestRecentInOneSession(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.PollInterval = time.Hour })
	deliver(t, env.inbox(), "1700000002.M3P3.mta", "Subject: r\n\nrecent\n")
	c1 := env.dial(nil)
	c2 := env.dial(nil)
	mustSelect(t, c1, "INBOX", false)
	mustSelect(t, c2, "INBOX", false)
	// A third session, raw, sees the RECENT count (imapclient ignores it).
	if out := env.dialRaw().cmd("a SELECT INBOX"); !strings.Contains(out, "* 0 RECENT") {
		t.Errorf("third SELECT: %q", out)
	}
	r1, _ := c1.Search(&imap.SearchCriteria{Flag: []imap.Flag{FlagRecent}}, nil).Wait()
	r2, _ := c2.Search(&imap.SearchCriteria{Flag: []imap.Flag{FlagRecent}}, nil).Wait()
	if r1 == nil || r2 == nil || r1.All.String() != "1" || r2.All.String() != "" {
		t.Errorf("SEARCH RECENT: %v %v", r1, r2)
	}
}

func TestSearchOverWire(t *testing.T) {
	env := newTestEnv(t, nil)
	c := env.dial(nil)
	appendMsg(t, c, "INBOX", mimeMessage, &imap.AppendOptions{Time: time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)})
	appendMsg(t, c, "INBOX", strings.ReplaceAll(lfMessage, "\n", "\r\n"), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}, Time: time.Date(2026, 2, 10, 12, 0, 0, 0, time.UTC)})
	appendMsg(t, c, "INBOX", "Subject: third\r\nX-Tag: blue\r\n\r\nnothing here\r\n", &imap.AppendOptions{Flags: []imap.Flag{"$Blue"}, Time: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)})
	mustSelect(t, c, "INBOX", false)
	tests := []struct {
		c    imap.SearchCriteria
		want string
	}{
		{imap.SearchCriteria{}, "1:3"},
		{imap.SearchCriteria{Body: []string{"HELLO"}}, "1"},
		{imap.SearchCriteria{Text: []string{"jörg"}}, "1:2"},
		{imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "café"}}}, "1"},
		{imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "X-Tag", Value: ""}}}, "3"},
		{imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, "1,3"},
		{imap.SearchCriteria{Flag: []imap.Flag{"$Blue"}}, "3"},
		{imap.SearchCriteria{Since: time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC)}, "2:3"},
		{imap.SearchCriteria{SentBefore: time.Date(2026, 2, 4, 0, 0, 0, 0, time.UTC)}, "1:2"},
		{imap.SearchCriteria{Larger: 200}, "1"},
		{imap.SearchCriteria{UID: []imap.UIDSet{{{Start: 2, Stop: 0}}}}, "2:3"},
		{imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Body: []string{"nothing"}}, {Flag: []imap.Flag{imap.FlagSeen}}}}}, "2:3"},
	}
	for _, tt := range tests {
		d, err := c.Search(&tt.c, nil).Wait()
		if err != nil {
			t.Errorf("SEARCH %+v: %v", tt.c, err)
			continue
		}
		if got := d.All.String(); got != tt.want {
			t.Errorf("SEARCH %+v = %q, want %q", tt.c, got, tt.want)
		}
	}
	// ESEARCH return options.
	d, err := c.UIDSearch(&imap.SearchCriteria{}, &imap.SearchOptions{ReturnMin: true, ReturnMax: true, ReturnCount: true}).Wait()
	if err != nil || d.Min != 1 || d.Max != 3 || d.Count != 3 {
		t.Errorf("ESEARCH: %+v %v", d, err)
	}
	// SEARCHRES: SAVE then $ (imapclient does not send SAVE: raw).
	r := env.dialRaw()
	r.cmd("a SELECT INBOX")
	// go-imap adds ALL to a lone SAVE, so an ESEARCH comes back too
	// (RFC 5182 wants none); the saved result is what matters here.
	if out := r.cmd("b SEARCH RETURN (SAVE) SEEN"); !strings.Contains(out, "b OK") {
		t.Errorf("SEARCH RETURN (SAVE): %q", out)
	}
	if out := r.cmd("c UID SEARCH UID $"); !strings.Contains(out, "* SEARCH 2\r\n") {
		t.Errorf("SEARCH UID $: %q", out)
	}
	if out := r.cmd("d SEARCH CHARSET ISO-8859-1 BODY x"); !strings.Contains(out, "d NO [BADCHARSET") {
		t.Errorf("SEARCH with another charset: %q", out)
	}
}

// rawClient speaks IMAP line by line, for what imapclient cannot send.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
}

func (env *testEnv) dialRaw() *rawClient {
	env.t.Helper()
	conn, err := net.Dial("tcp", env.ln.Addr().String())
	if err != nil {
		env.t.Fatal(err)
	}
	env.t.Cleanup(func() { conn.Close() })
	r := &rawClient{t: env.t, conn: conn, br: bufio.NewReader(conn)}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.br.ReadString('\n'); err != nil {
		env.t.Fatal(err)
	}
	return r
}

// cmd sends one command line and returns everything up to its tagged
// reply.
func (r *rawClient) cmd(line string) string {
	r.t.Helper()
	tag, _, _ := strings.Cut(line, " ")
	if _, err := io.WriteString(r.conn, line+"\r\n"); err != nil {
		r.t.Fatal(err)
	}
	var out strings.Builder
	for {
		l, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatalf("%s: %v (read %q)", line, err, out.String())
		}
		out.WriteString(l)
		if strings.HasPrefix(l, tag+" ") {
			return out.String()
		}
	}
}

func TestListExtendedRaw(t *testing.T) {
	env := newTestEnv(t, nil)
	r := env.dialRaw()
	for _, cmd := range []string{"a CREATE Lists.Go", "b CREATE Lists.Rust", "c CREATE Solo", "d SUBSCRIBE Lists.Go", "e SUBSCRIBE Solo"} {
		if out := r.cmd(cmd); !strings.Contains(out, " OK ") {
			t.Fatalf("%s: %q", cmd, out)
		}
	}
	out := r.cmd(`f LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"`)
	if !strings.Contains(out, `"Lists" (CHILDINFO ("SUBSCRIBED"))`) {
		t.Errorf("RECURSIVEMATCH: %q", out)
	}
	if !strings.Contains(out, `Solo`) || strings.Contains(out, "Lists.Go") {
		t.Errorf("RECURSIVEMATCH %%: %q", out)
	}
	out = r.cmd(`g LIST "" "*" RETURN (CHILDREN SUBSCRIBED)`)
	for _, want := range []string{`(\HasNoChildren \Subscribed) "." "Lists.Go"`, `(\HasNoChildren) "." "Lists.Rust"`, `\HasChildren`} {
		if !strings.Contains(out, want) {
			t.Errorf("LIST RETURN (CHILDREN SUBSCRIBED) lacks %q: %q", want, out)
		}
	}
	out = r.cmd(`h LSUB "" "*"`)
	if !strings.Contains(out, `* LSUB`) || !strings.Contains(out, "Lists.Go") || strings.Contains(out, "Rust") {
		t.Errorf("LSUB: %q", out)
	}
	out = r.cmd(`i LIST "" ""`)
	if !strings.Contains(out, `* LIST (\Noselect) "." ""`) {
		t.Errorf(`LIST "" "": %q`, out)
	}
	out = r.cmd(`j LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT SIZE))`)
	if !strings.Contains(out, `* STATUS "Solo" (MESSAGES 0 UIDNEXT 1 SIZE 0)`) {
		t.Errorf("LIST-STATUS: %q", out)
	}
	// IMAP4rev2: no RECENT, ESEARCH replies.
	if out := r.cmd("k ENABLE IMAP4rev2"); !strings.Contains(out, "ENABLED IMAP4rev2") {
		t.Fatalf("ENABLE: %q", out)
	}
	out = r.cmd("l SELECT Solo")
	if strings.Contains(out, "RECENT") || !strings.Contains(out, "l OK [READ-WRITE]") {
		t.Errorf("rev2 SELECT: %q", out)
	}
	if out := r.cmd("m SEARCH ALL"); !strings.Contains(out, `* ESEARCH (TAG "m")`) {
		t.Errorf("rev2 SEARCH: %q", out)
	}
}

// TestConcurrentSessions runs several clients of one user on one mailbox
// at once and checks that they end with the same view as the spool.
func TestConcurrentSessions(t *testing.T) {
	env := newTestEnv(t, nil)
	const clients, rounds = 4, 8
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for k := 0; k < clients; k++ {
		c := env.dial(newUpdates())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				errs <- err
				return
			}
			for i := 0; i < rounds; i++ {
				msg := fmt.Sprintf("Subject: c%d r%d\r\n\r\nx\r\n", k, i)
				cmd := c.Append("INBOX", int64(len(msg)), nil)
				io.WriteString(cmd, msg)
				cmd.Close()
				if _, err := cmd.Wait(); err != nil {
					errs <- fmt.Errorf("append: %w", err)
					return
				}
				if _, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
					errs <- fmt.Errorf("store: %w", err)
					return
				}
				if i%3 == 2 {
					if _, err := c.Expunge().Collect(); err != nil {
						errs <- fmt.Errorf("expunge: %w", err)
						return
					}
				}
				if _, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true, UID: true, RFC822Size: true}).Collect(); err != nil {
					errs <- fmt.Errorf("fetch: %w", err)
					return
				}
				if err := c.Noop().Wait(); err != nil {
					errs <- fmt.Errorf("noop: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	onSpool := len(listDir(t, filepath.Join(env.inbox(), "cur"))) + len(listDir(t, filepath.Join(env.inbox(), "new")))
	c := env.dial(nil)
	d := mustSelect(t, c, "INBOX", false)
	if int(d.NumMessages) != onSpool {
		t.Errorf("SELECT counts %d, spool holds %d", d.NumMessages, onSpool)
	}
}
