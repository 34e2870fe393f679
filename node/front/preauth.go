package front

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"

	"github.com/nfsimap/nfsimap/node/auth"
	"github.com/nfsimap/nfsimap/node/imaperr"
)

func stack() string { return string(debug.Stack()) }

// frontConn is one connection before login. Only its own goroutine uses
// its fields, except the ones guarded by connMu.
type frontConn struct {
	f    *Front
	log  *slog.Logger
	info ConnInfo

	connMu sync.Mutex // guards conn (swapped by STARTTLS, read by beginShutdown) and proxyStop
	conn   net.Conn
	// proxyStop, set while the connection is relayed to a peer, asks the
	// relay to say BYE at the next response boundary.
	proxyStop context.CancelFunc

	br  *bufio.Reader
	lr  lineReader
	out []byte // replies not yet written

	failures int // failed logins
	bad      int // unknown or malformed commands
}

func (c *frontConn) setConn(conn net.Conn) {
	c.connMu.Lock()
	c.conn = conn
	c.connMu.Unlock()
	c.br = bufio.NewReaderSize(conn, 4096)
	c.lr = lineReader{br: c.br, maxLine: c.f.cfg.MaxLineLength}
}

func (c *frontConn) netConn() net.Conn {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	return c.conn
}

func (c *frontConn) beginShutdown() {
	c.connMu.Lock()
	stop, conn := c.proxyStop, c.conn
	c.connMu.Unlock()
	if stop != nil {
		stop() // the relay says BYE itself
		return
	}
	// Interrupt a read; serve notices the front is stopping.
	conn.SetReadDeadline(time.Now())
}

func (c *frontConn) forceClose() { c.netConn().Close() }

func (c *frontConn) stopping() bool {
	select {
	case <-c.f.stopping:
		return true
	default:
		return false
	}
}

// reply queues a status line.
func (c *frontConn) reply(tag string, typ imap.StatusResponseType, code imap.ResponseCode, text string) {
	c.out = imaperr.Format(c.out, tag, &imap.StatusResponse{Type: typ, Code: code, Text: text})
}

// flush writes the queued replies.
func (c *frontConn) flush() error {
	if len(c.out) == 0 {
		return nil
	}
	conn := c.netConn()
	conn.SetWriteDeadline(time.Now().Add(c.f.cfg.WriteTimeout))
	_, err := conn.Write(c.out)
	c.out = c.out[:0]
	if err != nil {
		return fmt.Errorf("writing to client: %w", err)
	}
	return nil
}

// writeRaw writes s at once, ignoring errors (used on the way out).
func (c *frontConn) writeRaw(s string) {
	conn := c.netConn()
	conn.SetWriteDeadline(time.Now().Add(time.Second))
	conn.Write([]byte(s))
}

func (c *frontConn) isTLS() bool {
	_, ok := c.netConn().(*tls.Conn)
	return ok
}

// plainAllowed reports whether passwords may be sent on this connection.
func (c *frontConn) plainAllowed() bool {
	if c.isTLS() || c.f.trustAll {
		return true
	}
	addr, ok := c.info.Remote.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(addr.IP)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	for _, p := range c.f.cfg.TrustedNets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// capabilities lists what we advertise before login.
func (c *frontConn) capabilities() []string {
	caps := []string{"IMAP4rev1", "SASL-IR", "LITERAL+", "ID", "ENABLE", "IDLE"}
	if c.f.cfg.TLSConfig != nil && !c.isTLS() {
		caps = append(caps, "STARTTLS")
	}
	if c.plainAllowed() {
		caps = append(caps, "AUTH=PLAIN", "AUTH=LOGIN")
	} else {
		caps = append(caps, "LOGINDISABLED")
	}
	return caps
}

// serve runs the pre-auth dialogue. It returns true when the connection
// was handed off (and must not be closed by the caller).
func (c *frontConn) serve() bool {
	cfg := &c.f.cfg
	if tc, ok := c.netConn().(*tls.Conn); ok {
		tc.SetDeadline(time.Now().Add(cfg.PreAuthTimeout))
		if err := tc.Handshake(); err != nil {
			c.log.Debug("TLS handshake failed", "err", err)
			return false
		}
		tc.SetDeadline(time.Time{})
		c.info.TLS = true
	}
	c.out = fmt.Appendf(c.out, "* OK [CAPABILITY %s] %s ready\r\n", strings.Join(c.capabilities(), " "), cfg.ServerName)
	if err := c.flush(); err != nil {
		return false
	}
	for {
		if c.stopping() {
			c.writeRaw("* BYE [UNAVAILABLE] Server shutting down\r\n")
			return false
		}
		c.netConn().SetReadDeadline(time.Now().Add(cfg.PreAuthTimeout))
		line, err := c.lr.readLine()
		if errors.Is(err, errLineTooLong) {
			c.bad++
			c.reply("*", imap.StatusResponseTypeBad, imap.ResponseCodeTooBig, "Command line too long")
			if h, ok := parseLiteralSuffix(line); ok {
				if err := c.lr.discardCommand(h, cfg.MaxAuthLiteral); err != nil {
					c.reply("", imap.StatusResponseTypeBye, "", "Too much garbage")
					c.flush()
					return false
				}
			}
			if !c.afterBad() {
				return false
			}
			continue
		}
		if err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded) && c.stopping():
				c.writeRaw("* BYE [UNAVAILABLE] Server shutting down\r\n")
			case errors.Is(err, os.ErrDeadlineExceeded):
				c.writeRaw("* BYE Autologout; idle for too long\r\n")
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			default:
				c.log.Debug("read failed", "err", err)
			}
			return false
		}
		if len(line) == 0 {
			continue // tolerate empty lines
		}
		done, handedOff := c.command(line)
		if handedOff {
			return true
		}
		if err := c.flush(); err != nil || done {
			return false
		}
	}
}

// afterBad flushes after a bad command and closes the connection when
// there were too many.
func (c *frontConn) afterBad() bool {
	if c.bad >= c.f.cfg.MaxBadCommands {
		c.reply("", imap.StatusResponseTypeBye, "", "Too many invalid commands")
		c.flush()
		return false
	}
	return c.flush() == nil
}

// readArgs reads the rest of a LOGIN or ID command (see
// lineReader.readArgs). On a refused literal it replies and returns
// errLiteralTooBig; other errors end the connection.
func (c *frontConn) readArgs(tag string, args []byte) ([]byte, error) {
	raw, h, err := c.lr.readArgs(args, c.f.cfg.MaxAuthLiteral, func() error {
		c.out = append(c.out, "+ Ready for literal data\r\n"...)
		return c.flush()
	})
	if errors.Is(err, errLiteralTooBig) {
		c.reply(tag, imap.StatusResponseTypeNo, imap.ResponseCodeTooBig, "Literal too big")
		if err := c.lr.discardCommand(h, c.f.cfg.MaxAuthLiteral); err != nil {
			return nil, err
		}
	}
	return raw, err
}

// command runs one command line. done: close the connection; handedOff:
// the connection now belongs to go-imap.
func (c *frontConn) command(line []byte) (done, handedOff bool) {
	cl, ok := splitCommand(line)
	if !ok {
		c.bad++
		tag := "*"
		if i := strings.IndexByte(string(line), ' '); i > 0 && isTagString(line[:i]) {
			tag = string(line[:i])
		}
		c.reply(tag, imap.StatusResponseTypeBad, imap.ResponseCodeClientBug, "Syntax error in command")
		if h, ok := parseLiteralSuffix(line); ok {
			if err := c.lr.discardCommand(h, c.f.cfg.MaxAuthLiteral); err != nil {
				return true, false
			}
		}
		return !c.afterBad(), false
	}
	switch cl.name {
	case "LOGIN", "ID":
		args, err := c.readArgs(cl.tag, cl.args)
		if errors.Is(err, errLiteralTooBig) {
			return false, false
		} else if err != nil {
			c.log.Debug("reading arguments failed", "err", err)
			return true, false
		}
		cl.args = args
	default:
		if h, ok := parseLiteralSuffix(line); ok {
			c.bad++
			c.reply(cl.tag, imap.StatusResponseTypeBad, "", "Unexpected literal")
			if err := c.lr.discardCommand(h, c.f.cfg.MaxAuthLiteral); err != nil {
				return true, false
			}
			return !c.afterBad(), false
		}
	}
	tag := cl.tag
	noArgs := func() bool {
		if len(cl.args) != 0 || cl.args == nil && strings.HasSuffix(string(line), " ") {
			c.bad++
			c.reply(tag, imap.StatusResponseTypeBad, imap.ResponseCodeClientBug, "Unexpected arguments")
			return false
		}
		return true
	}
	switch cl.name {
	case "CAPABILITY":
		if noArgs() {
			c.out = fmt.Appendf(c.out, "* CAPABILITY %s\r\n", strings.Join(c.capabilities(), " "))
			c.reply(tag, imap.StatusResponseTypeOK, "", "CAPABILITY completed")
		}
	case "NOOP":
		if noArgs() {
			c.reply(tag, imap.StatusResponseTypeOK, "", "NOOP completed")
		}
	case "LOGOUT":
		if noArgs() {
			c.reply("", imap.StatusResponseTypeBye, "", "Logging out")
			c.reply(tag, imap.StatusResponseTypeOK, "", "LOGOUT completed")
			c.flush()
			return true, false
		}
	case "ID":
		c.out = handleID(c.out, tag, cl.args, &c.info, c.f.cfg, c.log)
	case "STARTTLS":
		if noArgs() {
			return c.startTLS(tag), false
		}
	case "LOGIN":
		return c.login(tag, cl.args)
	case "AUTHENTICATE":
		return c.authenticate(tag, cl.args)
	case "ENABLE", "SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE",
		"UNSUBSCRIBE", "LIST", "LSUB", "STATUS", "APPEND", "NAMESPACE", "IDLE":
		c.reply(tag, imap.StatusResponseTypeBad, imap.ResponseCodeClientBug, "Log in first")
	default:
		c.bad++
		if strings.Contains(string(line), " HTTP/1.") {
			// A browser tricked into talking to us (cross-protocol
			// attack): end it before the request headers are read.
			c.reply("", imap.StatusResponseTypeBye, "", "This is an IMAP server")
			c.flush()
			return true, false
		}
		c.reply(tag, imap.StatusResponseTypeBad, "", "Unknown command")
		return !c.afterBad(), false
	}
	return false, false
}

func isTagString(b []byte) bool {
	for _, ch := range b {
		if !isTagChar(ch) {
			return false
		}
	}
	return len(b) > 0
}

// startTLS upgrades the connection. It returns true when the connection
// should be closed.
func (c *frontConn) startTLS(tag string) bool {
	cfg := c.f.cfg.TLSConfig
	if cfg == nil || c.isTLS() {
		c.reply(tag, imap.StatusResponseTypeBad, "", "STARTTLS not available")
		return false
	}
	c.reply(tag, imap.StatusResponseTypeOK, "", "Begin TLS negotiation now")
	if err := c.flush(); err != nil {
		return true
	}
	if n := c.br.Buffered(); n > 0 {
		// Commands sent before the handshake could have been injected by
		// a man in the middle (CVE-2011-0411): drop them.
		c.log.Warn("dropping bytes pipelined after STARTTLS", "bytes", n)
		c.br.Discard(n)
	}
	tc := tls.Server(c.netConn(), cfg)
	tc.SetDeadline(time.Now().Add(c.f.cfg.PreAuthTimeout))
	if err := tc.Handshake(); err != nil {
		c.log.Debug("STARTTLS handshake failed", "err", err)
		return true
	}
	tc.SetDeadline(time.Time{})
	c.setConn(tc)
	c.info.TLS = true
	return false
}

// login runs LOGIN.
func (c *frontConn) login(tag string, args []byte) (done, handedOff bool) {
	p := argParser{b: args}
	user, ok1 := p.astring()
	ok2 := p.sp()
	pass, ok3 := p.astring()
	if !ok1 || !ok2 || !ok3 || !p.atEnd() {
		c.bad++
		c.reply(tag, imap.StatusResponseTypeBad, imap.ResponseCodeClientBug, "Syntax: LOGIN user password")
		return !c.afterBad(), false
	}
	if !c.plainAllowed() {
		c.reply(tag, imap.StatusResponseTypeNo, imap.ResponseCodePrivacyRequired, "Plaintext authentication is disabled without TLS")
		return false, false
	}
	return c.finishAuth(tag, user, pass, nil)
}

// authCtx bounds one password check.
func (c *frontConn) authCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.f.cfg.PreAuthTimeout)
}

// finishAuth checks a password (unless checkErr or a prior check already
// decided) and either hands the connection off or answers NO.
func (c *frontConn) finishAuth(tag, name, pass string, u *auth.User) (done, handedOff bool) {
	var err error
	if u == nil {
		ctx, cancel := c.authCtx()
		u, err = c.f.auth.Authenticate(ctx, name, pass)
		cancel()
	}
	if err != nil {
		return c.authFailed(tag, name, err), false
	}
	return c.loggedIn(tag, u)
}

// authFailed answers a failed authentication after the growing delay.
// It returns true when the connection should be closed.
func (c *frontConn) authFailed(tag, name string, err error) bool {
	if !errors.Is(err, auth.ErrBadCredentials) && !errors.Is(err, auth.ErrUnknownUser) {
		c.loginResult(LoginError)
		c.out = imaperr.Format(c.out, tag, imaperr.Reply(err, c.log, "cmd", "authenticate", "user", name))
		return false
	}
	c.loginResult(LoginFailed)
	c.failures++
	delay := c.f.cfg.FailDelay
	for i := 1; i < c.failures && delay < c.f.cfg.FailDelayMax; i++ {
		delay *= 2
	}
	delay = min(delay, c.f.cfg.FailDelayMax)
	c.log.Info("authentication failed", "user", name, "failures", c.failures, "delay", delay)
	t := time.NewTimer(delay)
	select {
	case <-t.C:
	case <-c.f.stopping:
		t.Stop()
	}
	c.reply(tag, imap.StatusResponseTypeNo, imap.ResponseCodeAuthenticationFailed, "Authentication failed")
	if c.failures >= c.f.cfg.MaxAuthFailures {
		c.reply("", imap.StatusResponseTypeBye, "", "Too many failed logins")
		c.flush()
		return true
	}
	return false
}

// authenticate runs AUTHENTICATE with PLAIN or LOGIN, with or without an
// initial response (SASL-IR).
func (c *frontConn) authenticate(tag string, args []byte) (done, handedOff bool) {
	p := argParser{b: args}
	mech, ok := p.atom()
	var ir []byte
	hasIR := false
	if ok && p.sp() {
		s, ok2 := p.atom()
		ok = ok2
		if s == "=" {
			ir, hasIR = []byte{}, true
		} else if ok2 {
			var err error
			ir, err = base64.StdEncoding.DecodeString(s)
			ok = err == nil
			hasIR = true
		}
	}
	if !ok || !p.atEnd() {
		c.bad++
		c.reply(tag, imap.StatusResponseTypeBad, imap.ResponseCodeClientBug, "Syntax: AUTHENTICATE mechanism [initial-response]")
		return !c.afterBad(), false
	}
	if !c.plainAllowed() {
		c.reply(tag, imap.StatusResponseTypeNo, imap.ResponseCodePrivacyRequired, "Plaintext authentication is disabled without TLS")
		return false, false
	}
	var (
		user    *auth.User
		name    string
		authErr error
	)
	check := func(username, password string) error {
		name = username
		ctx, cancel := c.authCtx()
		defer cancel()
		user, authErr = c.f.auth.Authenticate(ctx, username, password)
		return authErr
	}
	var srv sasl.Server
	switch strings.ToUpper(mech) {
	case "PLAIN":
		srv = sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				name = username
				authErr = fmt.Errorf("authorization identity %q differs: %w", identity, auth.ErrBadCredentials)
				return authErr
			}
			return check(username, password)
		})
	case "LOGIN":
		srv = &loginServer{check: check}
	default:
		c.reply(tag, imap.StatusResponseTypeNo, imap.ResponseCodeCannot, "Unsupported authentication mechanism")
		return false, false
	}
	resp := ir
	if !hasIR {
		resp = nil
	}
	for {
		challenge, finished, err := srv.Next(resp)
		if err != nil {
			if authErr == nil {
				// The exchange itself was malformed.
				authErr = fmt.Errorf("SASL %s: %v: %w", mech, err, auth.ErrBadCredentials)
			}
			return c.authFailed(tag, name, authErr), false
		}
		if finished {
			break
		}
		c.out = append(c.out, "+ "...)
		c.out = base64.StdEncoding.AppendEncode(c.out, challenge)
		c.out = append(c.out, '\r', '\n')
		if err := c.flush(); err != nil {
			return true, false
		}
		c.netConn().SetReadDeadline(time.Now().Add(c.f.cfg.PreAuthTimeout))
		line, err := c.lr.readLine()
		if errors.Is(err, errLineTooLong) {
			c.reply(tag, imap.StatusResponseTypeBad, imap.ResponseCodeTooBig, "Response too long")
			return false, false
		} else if err != nil {
			return true, false
		}
		if string(line) == "*" {
			c.reply(tag, imap.StatusResponseTypeBad, "", "Authentication cancelled")
			return false, false
		}
		resp, err = base64.StdEncoding.DecodeString(string(line))
		if err != nil {
			c.reply(tag, imap.StatusResponseTypeBad, imap.ResponseCodeClientBug, "Invalid base64")
			return false, false
		}
	}
	if user == nil {
		return c.authFailed(tag, name, fmt.Errorf("no user after SASL: %w", auth.ErrBadCredentials)), false
	}
	return c.finishAuth(tag, name, "", user)
}

// loginServer is the server side of the obsolete but common SASL LOGIN
// mechanism: it asks for "Username:" then "Password:".
type loginServer struct {
	check    func(username, password string) error
	step     int
	username string
}

func (s *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch s.step {
	case 0:
		s.step = 1
		if response == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		s.username = string(response)
		s.step = 2
		return []byte("Password:"), false, nil
	case 2:
		s.step = 3
		if err := s.check(s.username, string(response)); err != nil {
			return nil, false, err
		}
		return nil, true, nil
	}
	return nil, false, errors.New("unexpected response")
}

// loginResult tells the Observer of a login attempt's result.
func (c *frontConn) loginResult(result string) {
	if o := c.f.cfg.Observer; o != nil {
		o.Login(result)
	}
}

// loggedIn routes an authenticated user and hands the connection off.
func (c *frontConn) loggedIn(tag string, u *auth.User) (done, handedOff bool) {
	log := c.log.With("user", u.Name)
	// The result is told once. A relay is told ok before it starts (Proxy
	// returns only when the relay ends); when no peer takes the user, the
	// login served here is not told again.
	told := false
	result := func(r string) {
		if !told {
			told = true
			c.loginResult(r)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.f.cfg.PreAuthTimeout)
	defer cancel()
	d, err := c.f.router.Route(ctx, u, c.info)
	if err == nil && !d.Local {
		if c.f.cfg.Proxy == nil {
			err = fmt.Errorf("user %s belongs on %s, and proxying is not available: %w", u.Name, d.Peer, imaperr.ErrUnavailable)
		} else {
			if err := c.flush(); err != nil {
				return true, false
			}
			pctx, stop := context.WithCancel(context.Background())
			c.connMu.Lock()
			c.proxyStop = stop
			c.connMu.Unlock()
			if c.stopping() {
				stop() // Shutdown began before proxyStop was set
			}
			result(LoginOK)
			taken, perr := c.f.cfg.Proxy.Proxy(pctx, c.netConn(), c.br, u, c.info, tag)
			c.connMu.Lock()
			c.proxyStop = nil
			c.connMu.Unlock()
			stop()
			if taken {
				if perr != nil {
					log.Debug("proxied connection ended", "err", perr)
				}
				return false, true // Proxy closed the connection
			}
			log.Warn("serving here: no peer took the user", "peer", d.Peer, "err", perr)
		}
	}
	if err != nil {
		result(LoginError)
		c.out = imaperr.Format(c.out, tag, imaperr.Reply(err, log, "cmd", "route"))
		return false, false
	}
	sess, err := c.f.factory(ctx, u, c.info)
	if err != nil {
		result(LoginError)
		c.out = imaperr.Format(c.out, tag, imaperr.Reply(err, log, "cmd", "login"))
		return false, false
	}
	if err := c.flush(); err != nil {
		sess.Close()
		return true, false
	}
	log.Info("logged in", "tls", c.info.TLS)
	hc := newHandoffConn(c.f, c.netConn(), c.br, c.info, sess, tag, log)
	if c.f.cfg.OnSession != nil {
		hc.ended = c.f.cfg.OnSession(u, c.info, hc.beginShutdown)
	}
	if err := c.f.handOff(hc); err != nil {
		if hc.ended != nil {
			hc.ended()
		}
		sess.Close()
		result(LoginError)
		c.out = imaperr.Format(c.out, tag, imaperr.Reply(err, log, "cmd", "login"))
		return false, false
	}
	result(LoginOK)
	return false, true
}
