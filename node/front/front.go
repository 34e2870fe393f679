// Package front is the part of nfsimap a client talks to first: it greets,
// negotiates TLS, authenticates (LOGIN, AUTHENTICATE PLAIN and LOGIN, with
// SASL-IR and literals), asks a Router where the user is served, and hands
// a locally served connection to go-imap's imapserver through a command
// layer that answers ID, CAPABILITY, SORT and THREAD itself, guards two
// go-imap literal bugs, enforces our timeouts, batches go-imap's output and
// puts the session's own ENVELOPE encoding into it (envelope.go).
package front

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/nfsimap/nfsimap/node/auth"
	"github.com/nfsimap/nfsimap/node/sortthread"
)

// ConnInfo describes a client connection to the session backend.
type ConnInfo struct {
	ID       string            // unique per process, for logs
	Remote   net.Addr          // the client
	Local    net.Addr          // our end
	TLS      bool              // the connection is encrypted (IMAPS or after STARTTLS)
	ClientID map[string]string // what the client sent in ID (RFC 2971), nil if nothing
	// RawEnvelopes is true when the connection's output goes through the
	// command layer, which replaces envelopes made by EnvelopePlaceholder
	// with the bytes they carry. Without it a session must give go-imap
	// ordinary envelopes.
	RawEnvelopes bool
}

// SessionFactory makes the go-imap session of an authenticated user. It is
// called once per login, from the connection's goroutine, concurrently for
// different connections. An error is mapped to the LOGIN's tagged reply by
// imaperr (an *imap.Error as it is, a temporary fault as NO [UNAVAILABLE]).
type SessionFactory func(ctx context.Context, user *auth.User, info ConnInfo) (imapserver.Session, error)

// Sorter is implemented by sessions that can answer SORT (RFC 5256). It is
// called from the connection's goroutine between two go-imap commands,
// never concurrently with the session's other methods except Idle's
// updates. It returns the message numbers in result order (UIDs if uid).
type Sorter interface {
	Sort(uid bool, cmd *sortthread.SortCommand) ([]uint32, error)
}

// Threader is implemented by sessions that can answer THREAD (RFC 5256),
// under the same rules as Sorter.
type Threader interface {
	Thread(uid bool, cmd *sortthread.ThreadCommand) ([]*sortthread.Node, error)
}

// Decision is a Router's answer for an authenticated user.
type Decision struct {
	// Local is true when this node serves the user itself. When false,
	// Peer names the node that should (the cluster work proxies to it).
	Local bool
	Peer  string
}

// Router decides where an authenticated user is served. Route is called
// concurrently from many connections and may block briefly (it must honour
// ctx).
type Router interface {
	Route(ctx context.Context, user *auth.User, info ConnInfo) (Decision, error)
}

// Proxier relays an authenticated connection to the node that serves the
// user (node/cluster.Cluster implements it). Proxy is called from the
// connection's goroutine when the Router chose a peer, after the login
// succeeded and before its tagged reply; in yields the bytes the front
// already buffered, then the connection's. taken false: nothing was
// written to the client, serve it here. taken true: the connection was
// relayed and is closed; Proxy returns when the relay ends.
type Proxier interface {
	Proxy(ctx context.Context, client net.Conn, in io.Reader, user *auth.User, info ConnInfo, tag string) (taken bool, err error)
}

// Observer is told what the front does, for metrics (node/main feeds
// node/httpapi's Metrics from it). Its methods are called from the
// connections' goroutines, concurrently; they must be quick and must not
// block.
type Observer interface {
	// Login is told the result of each login attempt (LOGIN or
	// AUTHENTICATE that got as far as a password check): LoginOK,
	// LoginFailed or LoginError.
	Login(result string)
	// Command is told of each command served after login, once its
	// tagged reply is written: its name from a fixed set of upper-case
	// names ("SELECT", "UID FETCH"; "OTHER" for a name outside it), the
	// time from reading its first line to its tagged reply (literals sent
	// by the client included), and the reply's status ("OK", "NO",
	// "BAD"). IDLE is not reported: its length is the client's.
	Command(name string, took time.Duration, status string)
}

// Login results given to Observer.Login.
const (
	// LoginOK: the user is logged in (served here or relayed to a peer).
	LoginOK = "ok"
	// LoginFailed: bad credentials (or a malformed SASL exchange).
	LoginFailed = "failed"
	// LoginError: a server fault: the password check, the routing or the
	// session failed.
	LoginError = "error"
)

// LocalRouter serves every user on this node.
type LocalRouter struct{}

// Route implements Router.
func (LocalRouter) Route(context.Context, *auth.User, ConnInfo) (Decision, error) {
	return Decision{Local: true}, nil
}

// Config configures the front. The zero value of each field means its
// default, given by DefaultConfig.
type Config struct {
	// ServerName and Version are sent in ID replies and the greeting.
	ServerName string
	Version    string
	// NodeName, when set, is sent in ID replies as "environment"
	// "node=NAME", so a client or the load tester can tell which node of
	// a cluster served it.
	NodeName string
	// TLSConfig enables STARTTLS (and is used for nothing else here;
	// implicit TLS is done by the listener). nil: no STARTTLS.
	TLSConfig *tls.Config
	// TrustedNets are networks from which plaintext authentication is
	// allowed without TLS. nil means loopback only; an empty non-nil slice
	// means nowhere.
	TrustedNets []netip.Prefix
	// PreAuthTimeout bounds the wait for each command before login, and
	// the TLS handshake. Default 60 s.
	PreAuthTimeout time.Duration
	// IdleTimeout bounds the wait for the next command after login (and
	// an IDLE). RFC 3501 asks for at least 30 minutes. Default 31 min.
	IdleTimeout time.Duration
	// IdleKeepalive is how often a client in IDLE gets "* OK Still here"
	// so that NAT boxes and clients keep the connection. Default 2 min.
	IdleKeepalive time.Duration
	// CommandTimeout bounds each read inside a command after login
	// (literal data, the rest of a line). Default 5 min.
	CommandTimeout time.Duration
	// WriteTimeout bounds each write to the client. Default 5 min.
	WriteTimeout time.Duration
	// MaxLineLength is the longest accepted command line, literals not
	// counted. Default 64 KiB.
	MaxLineLength int
	// MaxAuthLiteral is the largest literal accepted before login (in
	// LOGIN and ID) and in the commands the front answers after login.
	// Default 8 KiB.
	MaxAuthLiteral int64
	// MaxDiscard is how many bytes of refused non-synchronizing literals
	// are read and dropped before the connection is closed instead.
	// Default 100 MiB.
	MaxDiscard int64
	// FailDelay is the wait before answering the first failed login on a
	// connection; it doubles with each further failure up to
	// FailDelayMax. Defaults 1 s and 16 s.
	FailDelay    time.Duration
	FailDelayMax time.Duration
	// MaxAuthFailures closes a connection after that many failed logins.
	// Default 10.
	MaxAuthFailures int
	// MaxBadCommands closes a connection before login after that many
	// unknown or malformed commands. Default 10.
	MaxBadCommands int
	// Caps are the capabilities given to go-imap's server (it advertises
	// the subset it implements and the session supports). Default:
	// IMAP4rev1 with LITERAL+, UIDPLUS, UNSELECT, IDLE, NAMESPACE, MOVE,
	// SPECIAL-USE, CHILDREN, ESEARCH, LIST-STATUS, STATUS=SIZE.
	Caps imap.CapSet
	// Logger receives the front's logs. nil: discard.
	Logger *slog.Logger
	// Proxy relays users the Router sends to a peer. nil: such logins
	// get NO [UNAVAILABLE].
	Proxy Proxier
	// OnSession, when set, is told of every session served here after its
	// login (node/admin.Registry feeds nfsimap who and kick from it): kick
	// asks the session to say BYE [UNAVAILABLE] at its next command
	// boundary; ended is called once when the connection closes. Called
	// from the connection's goroutine; it must not block.
	OnSession func(user *auth.User, info ConnInfo, kick func()) (ended func())
	// Observer, when set, is told of login attempts and commands (for
	// metrics). nil: no one is told.
	Observer Observer
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		ServerName:      "nfsimap",
		Version:         "dev",
		PreAuthTimeout:  60 * time.Second,
		IdleTimeout:     31 * time.Minute,
		IdleKeepalive:   2 * time.Minute,
		CommandTimeout:  5 * time.Minute,
		WriteTimeout:    5 * time.Minute,
		MaxLineLength:   64 * 1024,
		MaxAuthLiteral:  8 * 1024,
		MaxDiscard:      100 * 1024 * 1024,
		FailDelay:       time.Second,
		FailDelayMax:    16 * time.Second,
		MaxAuthFailures: 10,
		MaxBadCommands:  10,
		Caps: imap.CapSet{
			imap.CapIMAP4rev1:    {},
			imap.CapIMAP4rev2:    {},
			imap.CapListExtended: {},
			imap.CapBinary:       {},
			imap.CapLiteralPlus:  {},
			imap.CapUIDPlus:      {},
			imap.CapUnselect:     {},
			imap.CapIdle:         {},
			imap.CapNamespace:    {},
			imap.CapMove:         {},
			imap.CapSpecialUse:   {},
			imap.CapChildren:     {},
			imap.CapESearch:      {},
			imap.CapListStatus:   {},
			imap.CapStatusSize:   {},
		},
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ServerName == "" {
		c.ServerName = d.ServerName
	}
	if c.Version == "" {
		c.Version = d.Version
	}
	if c.TrustedNets == nil {
		c.TrustedNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	setDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	setDur(&c.PreAuthTimeout, d.PreAuthTimeout)
	setDur(&c.IdleTimeout, d.IdleTimeout)
	setDur(&c.IdleKeepalive, d.IdleKeepalive)
	setDur(&c.CommandTimeout, d.CommandTimeout)
	setDur(&c.WriteTimeout, d.WriteTimeout)
	setDur(&c.FailDelay, d.FailDelay)
	setDur(&c.FailDelayMax, d.FailDelayMax)
	if c.MaxLineLength == 0 {
		c.MaxLineLength = d.MaxLineLength
	}
	if c.MaxAuthLiteral == 0 {
		c.MaxAuthLiteral = d.MaxAuthLiteral
	}
	if c.MaxDiscard == 0 {
		c.MaxDiscard = d.MaxDiscard
	}
	if c.MaxAuthFailures == 0 {
		c.MaxAuthFailures = d.MaxAuthFailures
	}
	if c.MaxBadCommands == 0 {
		c.MaxBadCommands = d.MaxBadCommands
	}
	if c.Caps == nil {
		c.Caps = d.Caps
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports a configuration the front cannot work with.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.PreAuthTimeout < 0, c.IdleTimeout < 0, c.IdleKeepalive < 0, c.CommandTimeout < 0, c.WriteTimeout < 0:
		return errors.New("front: timeouts must not be negative")
	case c.FailDelay < 0 || c.FailDelayMax < c.FailDelay:
		return errors.New("front: need 0 <= FailDelay <= FailDelayMax")
	case c.MaxLineLength < 1024:
		return fmt.Errorf("front: MaxLineLength %d is below RFC 2683's 1000 octets", c.MaxLineLength)
	case c.MaxAuthLiteral < 0 || c.MaxDiscard < 0 || c.MaxAuthFailures < 0 || c.MaxBadCommands < 0:
		return errors.New("front: limits must not be negative")
	case !c.Caps.Has(imap.CapIMAP4rev1) && !c.Caps.Has(imap.CapIMAP4rev2):
		return errors.New("front: Caps must hold IMAP4rev1 or IMAP4rev2")
	}
	return nil
}

// tracked is a live connection the front can ask to leave at shutdown.
type tracked interface {
	// beginShutdown asks the connection to say BYE at its next command
	// boundary (or now, when it waits for one). It does not block.
	beginShutdown()
	// forceClose closes the connection now.
	forceClose()
}

// Front serves client connections. Its methods are safe for concurrent use.
type Front struct {
	cfg     Config
	auth    auth.Authenticator
	router  Router
	factory SessionFactory
	log     *slog.Logger

	// trustAll allows plaintext logins on any connection (tests over
	// net.Pipe, whose addresses carry no IP).
	trustAll bool

	nextID   atomic.Uint64
	stopping chan struct{} // closed when Shutdown starts

	mu      sync.Mutex // guards the fields below
	conns   map[tracked]struct{}
	servers map[string]*handoffServer
	stopped bool
	changed chan struct{} // buffered 1: a connection left
	serveWG sync.WaitGroup
}

// New makes a Front. router nil means LocalRouter.
func New(cfg Config, a auth.Authenticator, router Router, factory SessionFactory) (*Front, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if a == nil || factory == nil {
		return nil, errors.New("front: need an Authenticator and a SessionFactory")
	}
	if router == nil {
		router = LocalRouter{}
	}
	cfg = cfg.withDefaults()
	return &Front{
		cfg:      cfg,
		auth:     a,
		router:   router,
		factory:  factory,
		log:      cfg.Logger,
		stopping: make(chan struct{}),
		conns:    make(map[tracked]struct{}),
		servers:  make(map[string]*handoffServer),
		changed:  make(chan struct{}, 1),
	}, nil
}

// track registers a connection; it returns false when the front is
// shutting down.
func (f *Front) track(c tracked) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

// untrack removes a connection.
func (f *Front) untrack(c tracked) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// Conns returns how many client connections are open.
func (f *Front) Conns() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

// Shutdown tells every client BYE [UNAVAILABLE] at its next command
// boundary (at once for clients waiting for a command or in IDLE), refuses
// new connections, and waits until all are gone or ctx ends; then it
// closes what is left and returns ctx's error.
func (f *Front) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	if !f.stopped {
		f.stopped = true
		close(f.stopping)
	}
	conns := make([]tracked, 0, len(f.conns))
	for c := range f.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	for _, c := range conns {
		c.beginShutdown()
	}
	for {
		if f.Conns() == 0 {
			break
		}
		select {
		case <-f.changed:
			continue
		case <-ctx.Done():
		}
		break
	}
	f.Close()
	return ctx.Err()
}

// Close closes every connection and the hand-off servers at once.
func (f *Front) Close() {
	f.mu.Lock()
	if !f.stopped {
		f.stopped = true
		close(f.stopping)
	}
	conns := make([]tracked, 0, len(f.conns))
	for c := range f.conns {
		conns = append(conns, c)
	}
	servers := f.servers
	f.servers = make(map[string]*handoffServer)
	f.mu.Unlock()
	for _, c := range conns {
		c.forceClose()
	}
	for _, s := range servers {
		s.ln.Close()
	}
	f.serveWG.Wait()
}

// ServeConn serves one client connection until it ends or is handed off
// to go-imap, and closes it when it is done with it. A *tls.Conn gets its
// handshake here, under the pre-auth timeout. ServeConn recovers from
// panics in its own code (they are logged, and the connection is closed).
func (f *Front) ServeConn(conn net.Conn) {
	id := fmt.Sprintf("c%d", f.nextID.Add(1))
	log := f.log.With("conn", id, "remote", conn.RemoteAddr().String())
	c := &frontConn{
		f:   f,
		log: log,
		info: ConnInfo{
			ID:           id,
			Remote:       conn.RemoteAddr(),
			Local:        conn.LocalAddr(),
			RawEnvelopes: true, // every session made here runs behind a handoffConn
		},
	}
	c.setConn(conn)
	if !f.track(c) {
		c.writeRaw("* BYE [UNAVAILABLE] Server shutting down\r\n")
		conn.Close()
		return
	}
	handedOff := false
	defer func() {
		if v := recover(); v != nil {
			log.Error("panic in the front", "panic", v, "stack", stack())
			handedOff = false
		}
		f.untrack(c)
		if !handedOff {
			c.netConn().Close()
		}
	}()
	handedOff = c.serve()
}
