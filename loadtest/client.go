package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// runner holds what all clients of one run share.
type runner struct {
	cfg     Config
	stats   *Stats
	checker *Checker
	limiter *limiter

	nextAddr atomic.Uint64
	nextSrc  atomic.Uint64
	rngMu    sync.Mutex
	rng      *rand.Rand

	conns atomic.Int64 // open connections, for the progress line
}

func (r *runner) pickAddr() string {
	if len(r.cfg.Addrs) == 1 {
		return r.cfg.Addrs[0]
	}
	if r.cfg.Pick == "random" {
		r.rngMu.Lock()
		defer r.rngMu.Unlock()
		return r.cfg.Addrs[r.rng.Intn(len(r.cfg.Addrs))]
	}
	return r.cfg.Addrs[int(r.nextAddr.Add(1)-1)%len(r.cfg.Addrs)]
}

func (r *runner) dialer() *net.Dialer {
	d := &net.Dialer{Timeout: r.cfg.CommandTimeout}
	if n := len(r.cfg.SourceIPs); n > 0 {
		ip := r.cfg.SourceIPs[int(r.nextSrc.Add(1)-1)%n]
		d.LocalAddr = &net.TCPAddr{IP: ip.AsSlice()}
	}
	return d
}

// client is one IMAP connection of a simulated user.
type client struct {
	r    *runner
	user string
	name string
	addr string
	conn net.Conn
	c    *imapclient.Client
	rng  *rand.Rand
	log  commandLog

	// exists is signalled (coalesced) when the server announces new mail.
	exists chan struct{}
}

// connect dials, logs in and asks the server who served it.
func (r *runner) connect(ctx context.Context, user, name string, rng *rand.Rand) (*client, error) {
	cl := &client{r: r, user: user, name: name, addr: r.pickAddr(), rng: rng, exists: make(chan struct{}, 1)}
	opts := &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages != nil {
					select {
					case cl.exists <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	tlsConfig := &tls.Config{InsecureSkipVerify: r.cfg.InsecureTLS} //nolint:gosec // test servers, by flag only
	err := cl.do(ctx, "CONNECT", cl.addr, func() error {
		conn, err := r.dialer().DialContext(ctx, "tcp", cl.addr)
		if err != nil {
			return err
		}
		_ = conn.SetDeadline(time.Now().Add(r.cfg.CommandTimeout))
		switch r.cfg.TLS {
		case "implicit":
			host, _, _ := splitHostPort(cl.addr)
			tlsConfig.ServerName = host
			tconn := tls.Client(conn, tlsConfig)
			if err := tconn.HandshakeContext(ctx); err != nil {
				conn.Close()
				return err
			}
			cl.conn = tconn
			cl.c = imapclient.New(tconn, opts)
		case "starttls":
			opts.TLSConfig = tlsConfig
			cl.conn = conn
			c, err := imapclient.NewStartTLS(conn, opts)
			if err != nil {
				conn.Close()
				return err
			}
			cl.c = c
		default:
			cl.conn = conn
			cl.c = imapclient.New(conn, opts)
		}
		return cl.c.WaitGreeting()
	})
	if err != nil {
		return nil, err
	}
	r.conns.Add(1)
	// In cluster mode, ask the entry node its name before login (it
	// answers ID itself); after login the serving node answers.
	var entry string
	if len(r.cfg.Addrs) > 1 && cl.c.Caps().Has(imap.CapID) {
		_ = cl.do(ctx, "ID", "before login", func() error {
			data, err := cl.c.ID(&imap.IDData{Name: "nfsimap-loadtest"}).Wait()
			if err == nil && data != nil {
				entry = servedNode(data)
			}
			return err
		})
	}
	if err := cl.do(ctx, "LOGIN", user, func() error { return cl.c.Login(user, r.cfg.Password).Wait() }); err != nil {
		cl.close()
		return nil, err
	}
	if cl.c.Caps().Has(imap.CapID) {
		var served string
		_ = cl.do(ctx, "ID", "", func() error {
			data, err := cl.c.ID(&imap.IDData{Name: "nfsimap-loadtest"}).Wait()
			if err == nil && data != nil {
				served = servedNode(data)
			}
			return err
		})
		if served != "" {
			from := cl.addr
			if entry != "" {
				from = entry
			}
			r.stats.servedBy(from, served, entry != "" && entry != served)
		}
	}
	return cl, nil
}

// servedNode reads the serving node's name from a server's ID reply:
// nfsimap puts "node=NAME" in the environment field.
func servedNode(data *imap.IDData) string {
	for _, f := range strings.Fields(data.Environment) {
		if v, ok := strings.CutPrefix(f, "node="); ok {
			return v
		}
	}
	return ""
}

// do runs one timed command with the per-command deadline and records it.
func (cl *client) do(ctx context.Context, name, desc string, f func() error) error {
	if err := cl.r.limiter.wait(ctx); err != nil {
		return err
	}
	if cl.conn != nil {
		_ = cl.conn.SetDeadline(time.Now().Add(cl.r.cfg.CommandTimeout))
	}
	// A watchdog closes the connection if the command outlives its
	// deadline in a way the deadline cannot end (a client-side lock).
	var watchdog *time.Timer
	if cl.c != nil {
		c := cl.c
		watchdog = time.AfterFunc(cl.r.cfg.CommandTimeout+time.Second, func() { c.Close() })
	}
	start := time.Now()
	err := f()
	d := time.Since(start)
	if watchdog != nil {
		watchdog.Stop()
	}
	if errors.Is(err, context.Canceled) {
		// The run ended while this command waited: not the server's doing.
		return err
	}
	kind := classify(err)
	cl.r.stats.record(name, start, d, kind, err)
	if err != nil {
		cl.log.add(fmt.Sprintf("%s %s %s -> error: %v", start.Format("15:04:05.000"), name, desc, err))
	} else {
		cl.log.add(fmt.Sprintf("%s %s %s -> OK", start.Format("15:04:05.000"), name, desc))
	}
	return err
}

// recordSince records a command that was sent at start without waiting
// for its answer (pipelined), once its answer came.
func (cl *client) recordSince(name, desc string, start time.Time, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	cl.r.stats.record(name, start, time.Since(start), classify(err), err)
	if err != nil {
		cl.log.add(fmt.Sprintf("%s %s %s (pipelined) -> error: %v", start.Format("15:04:05.000"), name, desc, err))
	} else {
		cl.log.add(fmt.Sprintf("%s %s %s (pipelined) -> OK", start.Format("15:04:05.000"), name, desc))
	}
}

func (cl *client) violation(mailbox, format string, args ...any) {
	what := fmt.Sprintf(format, args...)
	cl.log.add("CHECK FAILED: " + what)
	cl.r.checker.report(Violation{User: cl.user, Conn: cl.name, Mailbox: mailbox, What: what, Commands: cl.log.snapshot()})
}

func (cl *client) logout(ctx context.Context) {
	_ = cl.do(ctx, "LOGOUT", "", func() error { return cl.c.Logout().Wait() })
	cl.close()
}

func (cl *client) close() {
	if cl.c != nil {
		cl.c.Close()
	}
	cl.r.conns.Add(-1)
}

func classify(err error) errKind {
	if err == nil {
		return ""
	}
	var imapErr *imap.Error
	if errors.As(err, &imapErr) {
		if imapErr.Type == imap.StatusResponseTypeBad {
			return errBad
		}
		return errNo
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return errTimeout
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &netErr) {
		return errNetwork
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return errTimeout
	}
	return errOther
}

// limiter spaces commands to a global rate; nil rate means no limit.
type limiter struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

func newLimiter(rate float64) *limiter {
	if rate <= 0 {
		return &limiter{}
	}
	return &limiter{interval: time.Duration(float64(time.Second) / rate)}
}

func (l *limiter) wait(ctx context.Context) error {
	if l == nil || l.interval == 0 {
		return nil
	}
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	at := l.next
	l.next = l.next.Add(l.interval)
	l.mu.Unlock()
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// pause waits about d (±25%) or until the run ends; false when it ended.
func pause(ctx context.Context, rng *rand.Rand, d time.Duration) bool {
	if d > 0 {
		d = d*3/4 + time.Duration(rng.Int63n(int64(d)/2+1))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
