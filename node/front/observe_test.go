package front

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/nfsimap/nfsimap/node/auth"
)

// recordingObserver keeps what the front tells its Observer.
type recordingObserver struct {
	mu       sync.Mutex
	logins   []string
	commands []observedCommand
}

type observedCommand struct {
	name, status string
	took         time.Duration
}

func (o *recordingObserver) Login(result string) {
	o.mu.Lock()
	o.logins = append(o.logins, result)
	o.mu.Unlock()
}

func (o *recordingObserver) Command(name string, took time.Duration, status string) {
	o.mu.Lock()
	o.commands = append(o.commands, observedCommand{name, status, took})
	o.mu.Unlock()
}

// waitLogins waits until the observer was told n logins and returns them.
func (o *recordingObserver) waitLogins(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		o.mu.Lock()
		got := slices.Clone(o.logins)
		o.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
}

// takeCommands returns the commands told so far and forgets them.
func (o *recordingObserver) takeCommands() []observedCommand {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.commands
	o.commands = nil
	return c
}

func TestObserverLoginsAndCommands(t *testing.T) {
	obs := &recordingObserver{}
	env := startEnv(t, func(c *Config) { c.Observer = obs })
	c := env.dial()
	// Nothing before login is a timed command.
	c.send("p1 CAPABILITY\r\n")
	c.expect("p1 OK")
	c.send("a1 LOGIN alice wrong\r\n")
	c.expect("a1 NO")
	if got := obs.waitLogins(t, 1); !slices.Equal(got, []string{LoginFailed}) {
		t.Fatalf("logins %q after a bad password", got)
	}
	c.login()
	if got := obs.waitLogins(t, 2); !slices.Equal(got, []string{LoginFailed, LoginOK}) {
		t.Fatalf("logins %q after a good one", got)
	}
	if got := obs.takeCommands(); len(got) != 0 {
		t.Fatalf("commands before login: %+v", got)
	}

	// Each reply is read before the next command is sent: the command
	// was told before its tagged reply was written.
	run := func(tag, cmd string) {
		t.Helper()
		c.send(tag + " " + cmd + "\r\n")
		c.expect(tag + " ")
	}
	run("s1", "SELECT INBOX")
	run("t1", "UID SORT (ARRIVAL) UTF-8 ALL") // answered by the command layer
	run("f1", "uid fetch 1:* (FLAGS)")
	run("n1", "NOOP")
	run("b1", "FROBNICATE")     // unknown to go-imap: BAD, named OTHER
	run("e1", "EXAMINE Nosuch") // NO
	run("c1", "CAPABILITY")     // answered by the command layer
	run("i1", "ID NIL")
	c.send("d1 IDLE\r\n")
	c.expect("+ ")
	c.send("DONE\r\n")
	c.expect("d1 OK")
	run("l1", "LOGOUT")

	got := obs.takeCommands()
	want := []observedCommand{
		{name: "SELECT", status: "OK"},
		{name: "UID SORT", status: "OK"},
		{name: "UID FETCH", status: "OK"},
		{name: "NOOP", status: "OK"},
		{name: "OTHER", status: "BAD"},
		{name: "EXAMINE", status: "NO"},
		{name: "CAPABILITY", status: "OK"},
		{name: "ID", status: "OK"},
		{name: "LOGOUT", status: "OK"},
	}
	if len(got) != len(want) {
		t.Fatalf("commands %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].name != want[i].name || got[i].status != want[i].status || got[i].took <= 0 {
			t.Errorf("command %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if got := obs.waitLogins(t, 2); len(got) != 2 {
		t.Errorf("logins %q", got)
	}
}

func TestObserverAuthenticate(t *testing.T) {
	obs := &recordingObserver{}
	env := startEnv(t, func(c *Config) { c.Observer = obs })
	c := env.dial()
	c.send("a1 AUTHENTICATE PLAIN AGFsaWNlAG5vcGU=\r\n") // alice / nope
	c.expect("a1 NO")
	c.send("a2 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldCBwYXNz\r\n") // alice / secret pass
	c.expect("a2 OK")
	if got := obs.waitLogins(t, 2); !slices.Equal(got, []string{LoginFailed, LoginOK}) {
		t.Fatalf("logins %q", got)
	}
}

// brokenAuth fails every password check with a server fault.
type brokenAuth struct{}

var errBackend = errors.New("passwd-file unreadable")

func (brokenAuth) Authenticate(context.Context, string, string) (*auth.User, error) {
	return nil, errBackend
}

func (brokenAuth) Lookup(context.Context, string) (*auth.User, error) { return nil, errBackend }

// brokenRouter cannot route anyone.
type brokenRouter struct{}

func (brokenRouter) Route(context.Context, *auth.User, ConnInfo) (Decision, error) {
	return Decision{}, errBackend
}

func TestObserverLoginErrors(t *testing.T) {
	factory := func(_ context.Context, u *auth.User, _ ConnInfo) (imapserver.Session, error) {
		return imapmemserver.NewUserSession(imapmemserver.NewUser(u.Name, "")), nil
	}
	for _, tc := range []struct {
		name   string
		auth   auth.Authenticator
		router Router
	}{
		{"password check fails", brokenAuth{}, nil},
		{"routing fails", testAuth{testUser: testPass}, brokenRouter{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &recordingObserver{}
			cfg := DefaultConfig()
			cfg.Observer = obs
			cfg.Logger = slog.New(slog.DiscardHandler)
			f, err := New(cfg, tc.auth, tc.router, factory)
			if err != nil {
				t.Fatal(err)
			}
			f.trustAll = true // net.Pipe has no IP address
			client, server := net.Pipe()
			done := make(chan struct{})
			go func() {
				defer close(done)
				f.ServeConn(server)
			}()
			t.Cleanup(func() {
				client.Close()
				<-done
				f.Close()
			})
			c := &rawClient{t: t, conn: client, br: newReader(client)}
			c.expect("* OK")
			c.send(fmt.Sprintf("a1 LOGIN %s \"%s\"\r\n", testUser, testPass))
			c.expect("a1 NO")
			if got := obs.waitLogins(t, 1); !slices.Equal(got, []string{LoginError}) {
				t.Fatalf("logins %q", got)
			}
		})
	}
}

func TestCommandLabel(t *testing.T) {
	for name, want := range map[string]string{
		"SELECT": "SELECT", "UID FETCH": "UID FETCH", "UID THREAD": "UID THREAD",
		"XYZZY": "OTHER", "UID XYZZY": "OTHER", "select": "OTHER",
	} {
		if got := commandLabel(name); got != want {
			t.Errorf("commandLabel(%q) = %q, want %q", name, got, want)
		}
	}
	for in, want := range map[string]string{
		"OK done\r\n": "OK", "NO [TRYCREATE] x": "NO", "BAD": "BAD", "OKAY": "OTHER", "": "OTHER",
	} {
		if got := replyStatus([]byte(in)); got != want {
			t.Errorf("replyStatus(%q) = %q, want %q", in, got, want)
		}
	}
	if got := ownReplyStatus([]byte("* SORT 1 2\r\nt1 OK SORT completed\r\n"), "t1"); got != "OK" {
		t.Errorf("ownReplyStatus = %q", got)
	}
	if got := ownReplyStatus([]byte("t12 OK x\r\n"), "t1"); got != "OTHER" {
		t.Errorf("ownReplyStatus of another tag = %q", got)
	}
}

// TestObserverNoAllocs checks that timing a command adds no allocation
// to the command layer's output path.
func TestObserverNoAllocs(t *testing.T) {
	obs := &recordingObserver{}
	cfg := DefaultConfig()
	cfg.Observer = obs
	h := &handoffConn{f: &Front{cfg: cfg}}
	name := string([]byte("UID FETCH")) // not a constant, like a parsed name
	reply := []byte("f1 OK FETCH completed\r\n")
	obs.commands = make([]observedCommand, 0, 4096)
	allocs := testing.AllocsPerRun(1000, func() {
		h.forwarded("f1", name, true)
		h.outMu.Lock()
		h.scanOutputLocked(reply)
		h.outMu.Unlock()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per command", allocs)
	}
	if len(obs.commands) == 0 || obs.commands[0].name != "UID FETCH" {
		t.Fatalf("observed %+v", obs.commands[:min(len(obs.commands), 1)])
	}
}
