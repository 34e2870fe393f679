// Package server runs nfsimap's client listeners: plain IMAP (with
// STARTTLS through the front) and implicit TLS, a certificate store that
// is reloaded on demand (SIGHUP), and the two-phase shutdown.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nfsimap/nfsimap/node/front"
	"github.com/nfsimap/nfsimap/node/proxyproto"
)

// CertStore holds the TLS certificate and reloads it from its files.
// Safe for concurrent use.
type CertStore struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// LoadCertStore reads a PEM certificate chain and key.
func LoadCertStore(certFile, keyFile string) (*CertStore, error) {
	s := &CertStore{certFile: certFile, keyFile: keyFile}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads the files; on an error the old certificate stays.
func (s *CertStore) Reload() error {
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("server: loading TLS certificate %s: %w", s.certFile, err)
	}
	s.cur.Store(&cert)
	return nil
}

// GetCertificate serves the current certificate (tls.Config hook).
func (s *CertStore) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load(), nil
}

// TLSConfig returns a server TLS configuration that always uses the
// current certificate.
func (s *CertStore) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.GetCertificate}
}

// Config configures the listeners. Empty addresses disable a listener.
type Config struct {
	IMAPAddr  string
	IMAPSAddr string
	// TLS is required for IMAPSAddr. nil: no implicit TLS.
	TLS *tls.Config
	// ProxyNetworks are the load balancers that send a PROXY protocol
	// header (required from them); empty: none.
	ProxyNetworks []netip.Prefix
	// Logger nil discards.
	Logger *slog.Logger
}

// Validate reports an unusable configuration.
func (c Config) Validate() error {
	if c.IMAPAddr == "" && c.IMAPSAddr == "" {
		return errors.New("server: no listener address")
	}
	if c.IMAPSAddr != "" && c.TLS == nil {
		return errors.New("server: IMAPS needs a TLS configuration")
	}
	return nil
}

// Server accepts client connections and gives them to a front.
type Server struct {
	cfg   Config
	front *front.Front
	log   *slog.Logger

	mu    sync.Mutex // guards lns and done
	lns   []listener
	done  bool
	conns sync.WaitGroup // ServeConn goroutines
	loops sync.WaitGroup // accept loops
	stop  chan struct{}
}

type listener struct {
	net.Listener
	tls bool
}

// New makes a Server; Listen binds it.
func New(cfg Config, f *front.Front) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, front: f, log: cfg.Logger, stop: make(chan struct{})}, nil
}

// Listen binds the configured addresses.
func (s *Server) Listen() error {
	var lc net.ListenConfig
	bind := func(addr string, isTLS bool) error {
		if addr == "" {
			return nil
		}
		ln, err := lc.Listen(context.Background(), "tcp", addr)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		if len(s.cfg.ProxyNetworks) > 0 {
			pcfg := proxyproto.DefaultConfig()
			pcfg.Trusted = s.cfg.ProxyNetworks
			pl, err := proxyproto.NewListener(ln, pcfg, s.log)
			if err != nil {
				ln.Close()
				return fmt.Errorf("server: %w", err)
			}
			ln = pl
		}
		s.mu.Lock()
		s.lns = append(s.lns, listener{ln, isTLS})
		s.mu.Unlock()
		s.log.Info("listening", "addr", ln.Addr().String(), "tls", isTLS)
		return nil
	}
	if err := bind(s.cfg.IMAPAddr, false); err != nil {
		return err
	}
	if err := bind(s.cfg.IMAPSAddr, true); err != nil {
		s.closeListeners()
		return err
	}
	return nil
}

// Addrs returns the bound addresses: plain IMAP first, then IMAPS (nil
// when not configured).
func (s *Server) Addrs() (imapAddr, imapsAddr net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lns {
		if l.tls {
			imapsAddr = l.Addr()
		} else {
			imapAddr = l.Addr()
		}
	}
	return imapAddr, imapsAddr
}

// Serve accepts connections until Shutdown; it returns nil then.
func (s *Server) Serve() error {
	s.mu.Lock()
	lns := append([]listener(nil), s.lns...)
	s.mu.Unlock()
	if len(lns) == 0 {
		return errors.New("server: Serve before Listen")
	}
	errc := make(chan error, len(lns))
	for _, l := range lns {
		s.loops.Add(1)
		go func() {
			defer s.loops.Done()
			errc <- s.acceptLoop(l)
		}()
	}
	s.loops.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) acceptLoop(l listener) error {
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: back off and retry.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "err", err, "retry_in", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
				continue
			case <-s.stop:
				t.Stop()
				return nil
			}
		}
		delay = 0
		if l.tls {
			c = tls.Server(c, s.cfg.TLS)
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			s.front.ServeConn(c)
		}()
	}
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		s.done = true
		close(s.stop)
	}
	for _, l := range s.lns {
		l.Close()
	}
}

// Shutdown stops accepting, then lets the front tell every client BYE
// [UNAVAILABLE] and wait for them until ctx ends (the grace period), then
// closes what is left. It returns ctx's error when clients had to be cut.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeListeners()
	s.loops.Wait()
	err := s.front.Shutdown(ctx)
	s.conns.Wait()
	return err
}
