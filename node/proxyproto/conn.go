package proxyproto

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// Config configures which peers may send a PROXY header and how it is read.
type Config struct {
	// Trusted lists the networks of the load balancers. Connections from
	// elsewhere are passed through untouched (their bytes are never
	// parsed). Must not be empty.
	Trusted []netip.Prefix
	// HeaderTimeout bounds the wait for the header of a trusted peer.
	// 0 means 5s.
	HeaderTimeout time.Duration
	// AllowMissing, when true, lets a trusted peer that sends no header
	// through as itself: as IMAP clients wait for the greeting, that is
	// only known after HeaderTimeout of silence, which delays the greeting
	// by that long; bytes that are not a header are kept for the reader.
	// false (the default) closes such connections: a balancer configured
	// to send the header always does, so a missing one is a mistake that
	// would otherwise go unnoticed and show every client with the
	// balancer's address.
	AllowMissing bool
}

// DefaultConfig returns the defaults; Trusted is empty and must be set.
func DefaultConfig() Config {
	return Config{HeaderTimeout: 5 * time.Second}
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	if len(c.Trusted) == 0 {
		return errors.New("proxyproto: Config.Trusted is empty")
	}
	for _, p := range c.Trusted {
		if !p.IsValid() {
			return fmt.Errorf("proxyproto: invalid trusted prefix %v", p)
		}
	}
	if c.HeaderTimeout < 0 {
		return fmt.Errorf("proxyproto: Config.HeaderTimeout %v is negative", c.HeaderTimeout)
	}
	return nil
}

// trusted reports whether addr is in one of the trusted networks.
func (c Config) trusted(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip := ta.AddrPort().Addr().Unmap()
	for _, p := range c.Trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Listener wraps a net.Listener: connections from trusted peers come back
// as *Conn, whose header is read by Handshake (or the first Read or
// RemoteAddr) in the caller's goroutine, so that Accept never waits for a
// slow peer. Connections from other peers come back as they are.
type Listener struct {
	net.Listener
	cfg    Config
	logger *slog.Logger
}

// NewListener wraps inner. logger may be nil.
func NewListener(inner net.Listener, cfg Config, logger *slog.Logger) (*Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.HeaderTimeout == 0 {
		cfg.HeaderTimeout = DefaultConfig().HeaderTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Listener{Listener: inner, cfg: cfg, logger: logger}, nil
}

// Accept returns the next connection; see Listener.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(c), nil
}

func (l *Listener) wrap(c net.Conn) net.Conn {
	if !l.cfg.trusted(c.RemoteAddr()) {
		return c
	}
	return &Conn{Conn: c, cfg: l.cfg, logger: l.logger}
}

// Wrap does for one accepted connection what Listener does: c itself when
// its peer is not trusted, else a *Conn. logger may be nil.
func Wrap(c net.Conn, cfg Config, logger *slog.Logger) (net.Conn, error) {
	l, err := NewListener(nil, cfg, logger)
	if err != nil {
		return nil, err
	}
	return l.wrap(c), nil
}

// Conn is a connection from a trusted peer. Its RemoteAddr is the client's
// address from the header (the peer's own for LOCAL headers and, with
// AllowMissing, when there was no header). Safe for the concurrent use
// net.Conn allows.
type Conn struct {
	net.Conn
	cfg    Config
	logger *slog.Logger

	// hsMu guards the handshake fields; the first caller reads the header
	// while the others wait.
	hsMu    sync.Mutex
	hsDone  bool
	hsErr   error
	header  *Header
	remote  net.Addr
	pending []byte // bytes read that were not a header (AllowMissing)

	// dlMu guards readDeadline, the deadline the user set, restored after
	// the handshake.
	dlMu         sync.Mutex
	readDeadline time.Time
}

// Handshake reads the header if that has not been done yet. On failure the
// connection is closed and every later Read returns the same error.
func (c *Conn) Handshake() error {
	c.hsMu.Lock()
	defer c.hsMu.Unlock()
	if c.hsDone {
		return c.hsErr
	}
	c.hsDone = true
	c.hsErr = c.handshakeLocked()
	if c.hsErr != nil {
		c.logger.Warn("PROXY protocol header refused", "peer", c.Conn.RemoteAddr().String(), "err", c.hsErr)
		c.Conn.Close()
	}
	return c.hsErr
}

func (c *Conn) handshakeLocked() error {
	c.dlMu.Lock()
	user := c.readDeadline
	c.dlMu.Unlock()
	deadline := time.Now().Add(c.cfg.HeaderTimeout)
	if !user.IsZero() && user.Before(deadline) {
		deadline = user
	}
	if err := c.Conn.SetReadDeadline(deadline); err != nil {
		return fmt.Errorf("proxyproto: %w", err)
	}
	h, rest, err := ReadHeader(c.Conn)
	c.dlMu.Lock()
	restoreErr := c.Conn.SetReadDeadline(c.readDeadline)
	c.dlMu.Unlock()
	if err != nil {
		silent := errors.Is(err, os.ErrDeadlineExceeded) && len(rest) == 0 && (user.IsZero() || user.After(deadline))
		if c.cfg.AllowMissing && (errors.Is(err, ErrNoHeader) || silent) {
			c.pending = rest
			c.remote = c.Conn.RemoteAddr()
			return restoreErr
		}
		return err
	}
	if restoreErr != nil {
		return fmt.Errorf("proxyproto: %w", restoreErr)
	}
	c.header = h
	c.remote = c.Conn.RemoteAddr()
	if h.Command == CommandProxy {
		c.remote = net.TCPAddrFromAddrPort(h.Source)
	}
	return nil
}

// Header returns the header after a successful handshake; nil when there
// was none (AllowMissing).
func (c *Conn) Header() (*Header, error) {
	if err := c.Handshake(); err != nil {
		return nil, err
	}
	return c.header, nil
}

// RemoteAddr returns the client's address; it performs the handshake
// first and, if that failed, returns the peer's own address.
func (c *Conn) RemoteAddr() net.Addr {
	if err := c.Handshake(); err != nil {
		return c.Conn.RemoteAddr()
	}
	return c.remote
}

// Read performs the handshake first, then reads the client's bytes.
func (c *Conn) Read(p []byte) (int, error) {
	if err := c.Handshake(); err != nil {
		return 0, err
	}
	c.hsMu.Lock()
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		c.hsMu.Unlock()
		return n, nil
	}
	c.hsMu.Unlock()
	return c.Conn.Read(p)
}

// SetReadDeadline sets the read deadline; during the handshake the earlier
// of it and HeaderTimeout applies.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	c.readDeadline = t
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline sets both deadlines, see SetReadDeadline.
func (c *Conn) SetDeadline(t time.Time) error {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	c.readDeadline = t
	return c.Conn.SetDeadline(t)
}

// NetConn returns the underlying connection (for splicing after the
// handshake).
func (c *Conn) NetConn() net.Conn { return c.Conn }
