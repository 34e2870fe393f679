// Package cluster routes a logged-in user to the node the ring prefers and
// relays the connection there.
//
// After the front has authenticated a client, Route (the front's Router)
// says whether this node serves the user or a peer does. For a peer, the
// front calls Proxy, which logs in at the peer's internal listener with
// the cluster credential, relays the peer's tagged reply to the client
// under the client's own tag, and then copies bytes both ways without
// parsing them.
//
// # The wire protocol between nodes
//
// The proxying node connects to the peer's internal address (ring
// metadata) from the IP address of its own internal address, so the peer
// can tell it is a ring member, and sends, in order:
//
//  1. a PROXY protocol version 1 line carrying the client's address and
//     the address it connected to ("PROXY TCP4 ...", or "PROXY UNKNOWN"
//     when they are not TCP addresses of one family);
//  2. when Config.ClientTLS is set, a TLS handshake (the internal listener
//     then requires TLS);
//  3. after the peer's "* OK" greeting: an ID command with the client's
//     own ID fields plus x-originating-ip, x-originating-port,
//     x-connected-ip, x-connected-port (Dovecot's names) and
//     x-session-id (the connection's ID on the proxying node), and then
//  4. AUTHENTICATE PLAIN with an initial response (SASL-IR) whose
//     authorization identity is empty, authentication identity is the
//     user's login name and password is the cluster secret.
//
// The internal listener's front accepts that password for any user it
// can look up (InternalAuthenticator) and nothing else. Its
// connections are served where they land: they are never proxied again,
// which is what keeps two nodes that disagree about the ring for a moment
// from bouncing a connection between them.
package cluster

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nfsimap/nfsimap/node/admin"
	"github.com/nfsimap/nfsimap/node/auth"
	"github.com/nfsimap/nfsimap/node/front"
	"github.com/nfsimap/nfsimap/node/httpapi"
	"github.com/nfsimap/nfsimap/node/proxyproto"
	"github.com/nfsimap/nfsimap/node/route"
	"github.com/nfsimap/nfsimap/ring"
)

// ClusterUser is not a login name: it is what the nodes' logs call the
// cluster credential.
const ClusterUser = "nfsimap-cluster"

// MinSecretLen is the shortest accepted cluster secret.
const MinSecretLen = 16

// Config configures a Cluster.
type Config struct {
	// NodeName is this node's name in the ring. Required.
	NodeName string
	// InternalAddr is this node's internal listener address ("ip:port").
	// Its IP, when it is a specific address, is also the source address
	// of connections to peers (see SourceIP). Required.
	InternalAddr string
	// SourceIP is the local IP address connections to peers come from;
	// peers accept only ring members' addresses. "" means the IP of
	// InternalAddr, or the system's choice when that is unspecified.
	SourceIP string
	// Secret is the cluster credential shared by all nodes, at least
	// MinSecretLen bytes. Required.
	Secret string
	// DialTimeout bounds the whole login at a peer: connect, TLS, greeting,
	// ID and AUTHENTICATE. A peer that takes longer is skipped. 0 means 2 s.
	DialTimeout time.Duration
	// RelayTimeout bounds the write of the relayed login reply to the
	// client, and how long a relay waits for the peer to finish after the
	// client closed its side. 0 means 30 s.
	RelayTimeout time.Duration
	// ClientTLS, when not nil, makes connections to peers use TLS with
	// this configuration (ServerName defaults to the host of the peer's
	// internal address). nil: plain TCP between nodes.
	ClientTLS *tls.Config
	// ServerTLS, when not nil, makes the internal listener require TLS
	// with this configuration. nil: plain TCP.
	ServerTLS *tls.Config
	// HeaderTimeout bounds the wait for the PROXY line on the internal
	// listener. 0 means 5 s.
	HeaderTimeout time.Duration
	// Logger receives the cluster's logs. nil: discard.
	Logger *slog.Logger
	// Metrics receives proxy counts. nil: none.
	Metrics *httpapi.Metrics
	// Registry, when not nil, lists proxied connections for `nfsimap who`
	// and lets `nfsimap kick` close them.
	Registry *admin.Registry
}

// DefaultConfig returns the defaults; NodeName, InternalAddr and Secret
// must still be set.
func DefaultConfig() Config {
	return Config{DialTimeout: 2 * time.Second, RelayTimeout: 30 * time.Second, HeaderTimeout: 5 * time.Second}
}

// ErrConfig is wrapped by Validate's errors.
var ErrConfig = errors.New("cluster: invalid config")

// Validate reports an unusable configuration.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if c.NodeName == "" {
		return bad("node name is empty")
	}
	if _, _, err := net.SplitHostPort(c.InternalAddr); err != nil {
		return bad("internal address %q is not host:port", c.InternalAddr)
	}
	if c.SourceIP != "" {
		if _, err := netip.ParseAddr(c.SourceIP); err != nil {
			return bad("source IP %q is not an IP address", c.SourceIP)
		}
	}
	if len(c.Secret) < MinSecretLen {
		return bad("the cluster secret must be at least %d bytes", MinSecretLen)
	}
	if c.DialTimeout < 0 || c.RelayTimeout < 0 || c.HeaderTimeout < 0 {
		return bad("negative timeout")
	}
	return nil
}

// Ring is where the cluster reads the current members; *ring.Ring
// implements it. Snapshot must be cheap and safe for concurrent use.
type Ring interface {
	Snapshot() *ring.Snapshot
}

// Cluster routes and proxies logins. Its methods are safe for concurrent
// use.
type Cluster struct {
	cfg    Config
	ring   Ring
	log    *slog.Logger
	source *net.TCPAddr // nil: the system picks
	secret [sha256.Size]byte

	wg sync.WaitGroup // internal connections being set up

	relayBufs *sync.Pool // big buffers of busy relays
}

var _ front.Router = (*Cluster)(nil)

// New makes a Cluster reading members from r.
func New(cfg Config, r Ring) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("%w: no ring", ErrConfig)
	}
	d := DefaultConfig()
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = d.DialTimeout
	}
	if cfg.RelayTimeout == 0 {
		cfg.RelayTimeout = d.RelayTimeout
	}
	if cfg.HeaderTimeout == 0 {
		cfg.HeaderTimeout = d.HeaderTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{cfg: cfg, ring: r, log: cfg.Logger, secret: sha256.Sum256([]byte(cfg.Secret)), relayBufs: newRelayBufs()}
	src := cfg.SourceIP
	if src == "" {
		src, _, _ = net.SplitHostPort(cfg.InternalAddr)
	}
	if ip, err := netip.ParseAddr(src); err == nil && !ip.IsUnspecified() {
		c.source = net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))
	}
	return c, nil
}

// Route implements front.Router for the client listeners: Local, or the
// first peer Proxy will try. A connection that arrived through a peer's
// proxy must not come here: the internal listener's front uses
// front.LocalRouter.
func (c *Cluster) Route(_ context.Context, u *auth.User, _ front.ConnInfo) (front.Decision, error) {
	d := route.Decide(c.ring.Snapshot(), c.cfg.NodeName, u.Name, false)
	if d.Local() {
		return front.Decision{Local: true}, nil
	}
	return front.Decision{Peer: d.Peers[0].Name}, nil
}

// InternalAuthenticator returns the Authenticator of the internal
// listener's front: it accepts the cluster secret as the password of any
// user that inner can look up, and nothing else (users' own passwords do
// not work there).
func (c *Cluster) InternalAuthenticator(inner auth.Authenticator) auth.Authenticator {
	return &internalAuth{secret: c.secret, inner: inner, log: c.log}
}

type internalAuth struct {
	secret [sha256.Size]byte
	inner  auth.Authenticator
	log    *slog.Logger
}

// Authenticate checks the cluster secret and looks the user up.
func (a *internalAuth) Authenticate(ctx context.Context, user, password string) (*auth.User, error) {
	got := sha256.Sum256([]byte(password))
	if subtle.ConstantTimeCompare(got[:], a.secret[:]) != 1 {
		a.log.Warn("wrong cluster credential on the internal listener", "user", user, "as", ClusterUser)
		return nil, fmt.Errorf("cluster credential: %w", auth.ErrBadCredentials)
	}
	u, err := a.inner.Lookup(ctx, user)
	if errors.Is(err, auth.ErrUnknownUser) {
		return nil, fmt.Errorf("proxied login of %q: %w: %w", user, auth.ErrBadCredentials, err)
	}
	return u, err
}

// Lookup is inner's.
func (a *internalAuth) Lookup(ctx context.Context, user string) (*auth.User, error) {
	return a.inner.Lookup(ctx, user)
}

// ErrNoPeer is returned (wrapped) by Proxy when no peer took the user.
var ErrNoPeer = errors.New("cluster: no peer took the connection")

// Proxy relays an authenticated client connection to the peer the ring
// prefers for user. The front calls it at the hand-off point, after the
// user's credentials were accepted and before anything was answered to
// the login command tagged tag. in yields the bytes the front already read
// from client beyond the login command (its bufio.Reader on client), then
// the connection's; nil means client itself.
//
// taken false: no peer took the connection (or the ring says this node
// serves the user); nothing was written to the client and the front serves
// it locally. err then says why (it wraps ErrNoPeer when peers failed).
// After trying at most route.MaxPeers peers, each within DialTimeout.
//
// taken true: the peer's tagged reply was relayed to the client under tag
// and the bytes were copied both ways until either side closed or ctx
// ended; Proxy closed the client connection. err is nil for an orderly
// end.
//
// Proxy blocks for the life of the relayed session and uses one more
// goroutine. It clears the client connection's deadlines.
func (c *Cluster) Proxy(ctx context.Context, client net.Conn, in io.Reader, user *auth.User, info front.ConnInfo, tag string) (taken bool, err error) {
	d := route.Decide(c.ring.Snapshot(), c.cfg.NodeName, user.Name, false)
	if d.Local() {
		return false, nil
	}
	var (
		up      *upstream
		lastErr error
	)
	for _, m := range d.Peers {
		up, lastErr = c.login(ctx, m, user.Name, info)
		if lastErr == nil {
			break
		}
		c.cfg.Metrics.Proxied(m.Name, false)
		c.log.Warn("peer did not take the user", "conn", info.ID, "user", user.Name, "peer", m.Name, "addr", m.Addr, "err", lastErr)
	}
	if up == nil {
		return false, fmt.Errorf("%w for %s: %w", ErrNoPeer, user.Name, lastErr)
	}
	c.cfg.Metrics.Proxied(up.peer, true)
	return true, c.relay(ctx, client, in, up, user.Name, info, tag)
}

// upstream is a logged-in connection to a peer.
type upstream struct {
	peer  string
	conn  net.Conn
	br    *bufio.Reader
	reply []byte // the lines to relay to the client, the tagged one last without its tag
}

// Limits of the login dialogue with a peer.
const (
	maxPeerLine  = 64 * 1024
	maxPeerLines = 100
	idTag        = "P1"
	authTag      = "P2"
	maxIDFields  = 30
)

// errPeer marks a peer that answered something other than expected.
var errPeer = errors.New("cluster: peer refused")

// login connects to peer m and logs user in there.
func (c *Cluster) login(ctx context.Context, m ring.Member, user string, info front.ConnInfo) (*upstream, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	dialer := net.Dialer{LocalAddr: c.source}
	if c.source == nil {
		dialer.LocalAddr = nil
	}
	raw, err := dialer.DialContext(ctx, "tcp", m.Addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to %s: %w", m.Name, err)
	}
	ok := false
	defer func() {
		if !ok {
			raw.Close()
		}
	}()
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Now()) })
	defer stop()
	raw.SetDeadline(deadline)
	if _, err := raw.Write(proxyLine(info.Remote, info.Local)); err != nil {
		return nil, fmt.Errorf("cluster: PROXY line to %s: %w", m.Name, err)
	}
	conn := raw
	if c.cfg.ClientTLS != nil {
		tcfg := c.cfg.ClientTLS.Clone()
		if tcfg.ServerName == "" {
			tcfg.ServerName, _, _ = net.SplitHostPort(m.Addr)
		}
		tc := tls.Client(raw, tcfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("cluster: TLS with %s: %w", m.Name, err)
		}
		conn = tc
	}
	br := bufio.NewReaderSize(conn, 4096)
	greeting, err := readLine(br)
	if err != nil {
		return nil, fmt.Errorf("cluster: greeting of %s: %w", m.Name, err)
	}
	if !strings.HasPrefix(greeting, "* OK") {
		return nil, fmt.Errorf("%w: %s greeted %q", errPeer, m.Name, greeting)
	}
	cmd := append([]byte(idTag+" ID "), idArgs(info)...)
	cmd = append(cmd, "\r\n"...)
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + c.cfg.Secret))
	cmd = append(cmd, authTag+" AUTHENTICATE PLAIN "+ir+"\r\n"...)
	// Both commands go in one write; the peer answers them in order.
	if _, err := conn.Write(cmd); err != nil {
		return nil, fmt.Errorf("cluster: login at %s: %w", m.Name, err)
	}
	if _, err := readTagged(br, idTag); err != nil {
		return nil, fmt.Errorf("cluster: ID at %s: %w", m.Name, err)
	}
	reply, err := readTagged(br, authTag)
	if err != nil {
		return nil, fmt.Errorf("cluster: login at %s: %w", m.Name, err)
	}
	last := reply[len(reply)-1]
	if !strings.HasPrefix(last, "OK") {
		return nil, fmt.Errorf("%w: %s answered the login with %q", errPeer, m.Name, last)
	}
	var out []byte
	for _, l := range reply {
		out = append(out, l...)
		out = append(out, '\r', '\n')
	}
	ok = true
	stop()
	conn.SetDeadline(time.Time{})
	return &upstream{peer: m.Name, conn: conn, br: br, reply: out}, nil
}

// readLine reads one CRLF- (or LF-) terminated line from a peer.
func readLine(br *bufio.Reader) (string, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return "", err
		}
		if len(line) > maxPeerLine {
			return "", fmt.Errorf("%w: line longer than %d bytes", errPeer, maxPeerLine)
		}
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// readTagged reads the reply to the command tagged tag: the untagged lines
// as they are, and the tagged one last with its tag cut off. A BYE or a
// continuation request is an error.
func readTagged(br *bufio.Reader, tag string) ([]string, error) {
	var lines []string
	for range maxPeerLines {
		l, err := readLine(br)
		if err != nil {
			return nil, err
		}
		switch {
		case strings.HasPrefix(l, tag+" "):
			return append(lines, l[len(tag)+1:]), nil
		case strings.HasPrefix(l, "* BYE"):
			return nil, fmt.Errorf("%w: %q", errPeer, l)
		case strings.HasPrefix(l, "+"):
			return nil, fmt.Errorf("%w: unexpected continuation request %q", errPeer, l)
		}
		lines = append(lines, l)
	}
	return nil, fmt.Errorf("%w: more than %d lines before the tagged reply", errPeer, maxPeerLines)
}

// idArgs is the argument of the ID command sent to a peer: the client's
// ID fields and the connection's addresses, as a parenthesised list.
func idArgs(info front.ConnInfo) []byte {
	fields := make(map[string]string, len(info.ClientID)+5)
	for k, v := range info.ClientID {
		if !strings.HasPrefix(strings.ToLower(k), "x-originating-") && !strings.HasPrefix(strings.ToLower(k), "x-connected-") {
			fields[k] = v
		}
	}
	addField := func(prefix string, a net.Addr) {
		ta, ok := a.(*net.TCPAddr)
		if !ok {
			return
		}
		ap := ta.AddrPort()
		fields[prefix+"ip"] = ap.Addr().Unmap().String()
		fields[prefix+"port"] = strconv.Itoa(int(ap.Port()))
	}
	addField("x-originating-", info.Remote)
	addField("x-connected-", info.Local)
	if info.ID != "" {
		fields["x-session-id"] = info.ID
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	// Ours first, so they survive the cap on the number of fields.
	slices.SortFunc(keys, func(a, b string) int {
		ax, bx := strings.HasPrefix(a, "x-"), strings.HasPrefix(b, "x-")
		if ax != bx {
			if ax {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	if len(keys) > maxIDFields {
		keys = keys[:maxIDFields]
	}
	out := []byte{'('}
	for i, k := range keys {
		if i > 0 {
			out = append(out, ' ')
		}
		out = appendQuoted(out, k)
		out = append(out, ' ')
		out = appendQuoted(out, fields[k])
	}
	return append(out, ')')
}

// appendQuoted writes s as an IMAP quoted string, leaving out the bytes a
// quoted string cannot carry (CR, LF, NUL).
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; ch {
		case '\r', '\n', 0:
		case '"', '\\':
			dst = append(dst, '\\', ch)
		default:
			dst = append(dst, ch)
		}
	}
	return append(dst, '"')
}

// proxyLine is the PROXY protocol version 1 line for a client at remote
// that connected to local.
func proxyLine(remote, local net.Addr) []byte {
	r, ok1 := remote.(*net.TCPAddr)
	l, ok2 := local.(*net.TCPAddr)
	if !ok1 || !ok2 {
		return []byte("PROXY UNKNOWN\r\n")
	}
	ra, la := r.AddrPort(), l.AddrPort()
	ri, li := ra.Addr().Unmap(), la.Addr().Unmap()
	fam := ""
	switch {
	case ri.Is4() && li.Is4():
		fam = "TCP4"
	case ri.Is6() && li.Is6():
		fam = "TCP6"
	default:
		return []byte("PROXY UNKNOWN\r\n")
	}
	return fmt.Appendf(nil, "PROXY %s %s %s %d %d\r\n", fam, ri, li, ra.Port(), la.Port())
}

// relay sends the login reply to the client and copies bytes both ways.
func (c *Cluster) relay(ctx context.Context, client net.Conn, in io.Reader, up *upstream, user string, info front.ConnInfo, tag string) error {
	if in == nil {
		in = client
	}
	log := c.log.With("conn", info.ID, "user", user, "peer", up.peer, "remote", addrString(info.Remote))
	done := c.cfg.Metrics.ConnOpened(httpapi.ConnProxied)
	defer done()

	var closeOnce sync.Once
	closeBoth := func() {
		closeOnce.Do(func() {
			client.Close()
			up.conn.Close()
		})
	}
	defer closeBoth()
	// ctx ending (the front shutting down) asks the copy from the peer to
	// say BYE at the next response boundary; RelayTimeout later the
	// connection is cut regardless.
	var stopping atomic.Bool
	stop := context.AfterFunc(ctx, func() {
		stopping.Store(true)
		up.conn.SetReadDeadline(time.Now())
		time.AfterFunc(c.cfg.RelayTimeout, closeBoth)
	})
	defer stop()
	if c.cfg.Registry != nil {
		remove := c.cfg.Registry.Add(admin.Entry{
			ID: info.ID, User: user, Remote: addrString(info.Remote), Since: time.Now(),
			Kind: httpapi.ConnProxied, Peer: up.peer, TLS: info.TLS,
		}, closeBoth)
		defer remove()
	}

	// The client's tag goes before the peer's tagged reply.
	reply := up.reply
	i := strings.LastIndex(string(reply[:len(reply)-2]), "\n") + 1
	msg := make([]byte, 0, len(reply)+len(tag)+1)
	msg = append(msg, reply[:i]...)
	msg = append(msg, tag...)
	msg = append(msg, ' ')
	msg = append(msg, reply[i:]...)
	client.SetDeadline(time.Now().Add(c.cfg.RelayTimeout))
	if _, err := client.Write(msg); err != nil {
		return fmt.Errorf("cluster: relaying the login reply: %w", err)
	}
	client.SetDeadline(time.Time{})
	log.Info("proxying", "peer_addr", up.conn.RemoteAddr().String())
	start := time.Now()

	// Client to peer in a goroutine, peer to client here. When the client
	// closes its side, the peer is told (half-close) and gets RelayTimeout
	// to finish; when the peer closes, the relay ends.
	type result struct {
		n     int64
		err   error
		timer *time.Timer
	}
	upc := make(chan result, 1)
	go func() {
		n, err := copyRequests(up.conn, in, client)
		var t *time.Timer
		if err == nil {
			closeWrite(up.conn)
			t = time.AfterFunc(c.cfg.RelayTimeout, closeBoth)
		} else {
			closeBoth()
		}
		upc <- result{n, err, t}
	}()
	// The login reader is only drained now: let it go with its buffer.
	br := up.br
	up.br = nil
	down, downErr := copyResponses(client, br, up.conn, &stopping, c.relayBufs)
	closeBoth()
	r := <-upc
	if r.timer != nil {
		r.timer.Stop()
	}
	log.Info("proxy ended", "took", time.Since(start).Round(time.Millisecond), "bytes_in", r.n, "bytes_out", down)
	if ctx.Err() != nil || errors.Is(downErr, errStopped) {
		return nil
	}
	if downErr != nil && !errors.Is(downErr, net.ErrClosed) {
		return fmt.Errorf("cluster: relay from %s: %w", up.peer, downErr)
	}
	return nil
}

// closeWrite half-closes c when it can, so the peer sees the client's end
// of input; for other connections it does nothing.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// ServeInternal accepts connections from peers on ln and gives them to f,
// the internal listener's front (built with InternalAuthenticator and
// front.LocalRouter, and trusted networks that allow plaintext logins from
// anywhere: only ring members get through). A connection from an address
// that is not a ring member's is refused with a BYE; the others must start
// with a PROXY line, whose client address becomes the connection's remote
// address, so the serving node logs and uses the client's own address.
// It returns nil when ln is closed, after the connections being set up are
// handed to f.
func (c *Cluster) ServeInternal(ln net.Listener, f *front.Front) error {
	defer c.wg.Wait()
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: back off and retry
			// (a closed listener ends the wait with ErrClosed).
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			c.log.Warn("internal accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		c.wg.Go(func() { c.serveInternal(conn, f) })
	}
}

// serveInternal checks one peer connection and hands it to f.
func (c *Cluster) serveInternal(conn net.Conn, f *front.Front) {
	peer, ok := c.memberAt(conn.RemoteAddr())
	if !ok {
		c.log.Warn("internal connection from an address that is not a ring member refused", "from", conn.RemoteAddr().String())
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		io.WriteString(conn, "* BYE [UNAVAILABLE] Not a ring member\r\n")
		conn.Close()
		return
	}
	pc, err := proxyproto.Wrap(conn, proxyproto.Config{
		Trusted:       []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
		HeaderTimeout: c.cfg.HeaderTimeout,
	}, c.log)
	if err != nil { // cannot happen: the configuration is fixed
		c.log.Error("internal listener", "err", err)
		conn.Close()
		return
	}
	if p, ok := pc.(*proxyproto.Conn); ok {
		if err := p.Handshake(); err != nil {
			c.log.Warn("internal connection without a PROXY line refused", "from", conn.RemoteAddr().String(), "peer", peer, "err", err)
			return // Handshake closed it
		}
	}
	c.log.Debug("internal connection", "peer", peer, "client", pc.RemoteAddr().String())
	var served net.Conn = pc
	if p, ok := pc.(*proxyproto.Conn); ok {
		// The header is read and nothing is left buffered in p (it
		// requires a header): from now on p's only difference is its
		// remote address, and its reads cost two mutexes each.
		served = &peerConn{Conn: p.NetConn(), remote: p.RemoteAddr()}
	}
	if c.cfg.ServerTLS != nil {
		served = tls.Server(served, c.cfg.ServerTLS)
	}
	f.ServeConn(served)
}

// peerConn is a connection from a peer whose PROXY line was read: the
// socket itself, with the client's address as its remote address.
type peerConn struct {
	net.Conn
	remote net.Addr
}

// RemoteAddr is the client's address from the PROXY line.
func (c *peerConn) RemoteAddr() net.Addr { return c.remote }

// memberAt returns the name of the ring member whose internal or gossip
// IP address is addr's.
func (c *Cluster) memberAt(addr net.Addr) (string, bool) {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return "", false
	}
	ip := ta.AddrPort().Addr().Unmap()
	for _, m := range c.ring.Snapshot().Members() {
		for _, a := range []string{m.Addr, m.Gossip} {
			host, _, err := net.SplitHostPort(a)
			if err != nil {
				continue
			}
			if mip, err := netip.ParseAddr(host); err == nil && mip.Unmap() == ip {
				return m.Name, true
			}
		}
	}
	return "", false
}
