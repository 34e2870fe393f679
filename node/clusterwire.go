package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nfsimap/nfsimap/node/admin"
	"github.com/nfsimap/nfsimap/node/auth"
	"github.com/nfsimap/nfsimap/node/cluster"
	"github.com/nfsimap/nfsimap/node/config"
	"github.com/nfsimap/nfsimap/node/front"
	"github.com/nfsimap/nfsimap/node/httpapi"
	"github.com/nfsimap/nfsimap/node/maildir"
	"github.com/nfsimap/nfsimap/node/server"
	"github.com/nfsimap/nfsimap/ring"
)

// clusterParts are the parts of a node beyond the single-node server: the
// ring, the router and proxy, the internal listener, the HTTP endpoint,
// the admin socket and the drain. Without cluster.ring_bind there is no
// ring, and every user is served here.
type clusterParts struct {
	cfg      config.Config
	log      *slog.Logger
	nodeName string

	reg      *prometheus.Registry
	metrics  *httpapi.Metrics
	registry *admin.Registry

	ring    *ring.Ring       // nil: single node
	cluster *cluster.Cluster // nil: single node

	health     *httpapi.Handler
	httpSrv    *http.Server
	internal   *front.Front
	internalLn net.Listener
	adminSrv   *admin.Server
	drainer    *cluster.Drainer

	cancel context.CancelFunc // stops the goroutines start began
	wg     sync.WaitGroup
}

// newClusterParts starts the ring's gossip (not yet joined) and makes the
// router; nothing listens for clients yet.
func newClusterParts(cfg config.Config, log *slog.Logger) (*clusterParts, error) {
	p := &clusterParts{cfg: cfg, log: log, reg: prometheus.NewRegistry(), registry: admin.NewRegistry()}
	var err error
	if p.metrics, err = httpapi.NewMetrics(p.reg); err != nil {
		return nil, err
	}
	p.nodeName = cfg.Cluster.NodeName
	if p.nodeName == "" {
		if p.nodeName, err = os.Hostname(); err != nil {
			return nil, err
		}
	}
	c := cfg.Cluster
	if c.RingBind == "" {
		return p, nil
	}
	secret := c.Secret
	if c.SecretFile != "" {
		b, err := os.ReadFile(c.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("cluster.secret_file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	host, port, err := net.SplitHostPort(c.RingBind)
	if err != nil {
		return nil, fmt.Errorf("cluster.ring_bind: %w", err)
	}
	rcfg := ring.DefaultConfig()
	rcfg.NodeName = p.nodeName
	rcfg.InternalAddr = c.InternalAddr
	rcfg.Version = version
	rcfg.BindAddr = host
	if rcfg.BindPort, err = strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("cluster.ring_bind: %w", err)
	}
	rcfg.Seeds = c.Seeds
	rcfg.SecretKey = cluster.GossipKey(secret)
	rcfg.Profile = ring.Profile(c.Profile)
	if c.RejoinInterval > 0 {
		rcfg.RejoinInterval = c.RejoinInterval
	}
	if p.ring, err = ring.New(rcfg, log.With("part", "ring")); err != nil {
		return nil, err
	}
	ccfg := cluster.DefaultConfig()
	ccfg.NodeName = p.nodeName
	ccfg.InternalAddr = c.InternalAddr
	ccfg.Secret = secret
	ccfg.DialTimeout = c.DialTimeout
	if c.TLSCertFile != "" {
		if ccfg.ServerTLS, ccfg.ClientTLS, err = cluster.LoadTLS(c.TLSCertFile, c.TLSKeyFile, c.TLSCAFile); err != nil {
			p.ring.Close()
			return nil, err
		}
	}
	ccfg.Logger = log.With("part", "cluster")
	ccfg.Metrics = p.metrics
	ccfg.Registry = p.registry
	if p.cluster, err = cluster.New(ccfg, p.ring); err != nil {
		p.ring.Close()
		return nil, err
	}
	return p, nil
}

// router is the client front's Router.
func (p *clusterParts) router() front.Router {
	if p.cluster == nil {
		return front.LocalRouter{}
	}
	return p.cluster
}

// configureFront sets the client front's hooks: the proxy (none without
// a ring), the session registry and the metrics.
func (p *clusterParts) configureFront(fcfg *front.Config) {
	if p.cluster != nil {
		fcfg.Proxy = p.cluster
	}
	fcfg.OnSession = p.onSession(httpapi.ConnLocal)
	fcfg.Observer = frontObserver{m: p.metrics, logins: true}
}

// frontObserver feeds a front's logins and commands to the metrics.
// Without logins, logins are not counted: on the internal listener they
// are a peer's relays of logins its own front counted.
type frontObserver struct {
	m      *httpapi.Metrics
	logins bool
}

func (o frontObserver) Login(result string) {
	if !o.logins {
		return
	}
	switch result {
	case front.LoginOK:
		o.m.Login(httpapi.LoginOK)
	case front.LoginFailed:
		o.m.Login(httpapi.LoginFailed)
	default:
		o.m.Login(httpapi.LoginError)
	}
}

func (o frontObserver) Command(name string, took time.Duration, _ string) {
	o.m.Command(name, took)
}

// spoolHooks sets the maildir's hooks that count spool operations and
// time dot-lock waits.
func spoolHooks(opt *maildir.Options, m *httpapi.Metrics) {
	if m == nil {
		return
	}
	opt.OnOp = func(op string) { m.SpoolOp(op, 1) }
	opt.Lock.OnAcquire = func(waited time.Duration, _ error) { m.LockWait(waited) }
}

// onSession records a session served here, of kind local (from a client
// listener) or internal (from a peer's proxy), in the registry and the
// metrics.
func (p *clusterParts) onSession(kind string) func(*auth.User, front.ConnInfo, func()) func() {
	return func(u *auth.User, info front.ConnInfo, kick func()) func() {
		closed := p.metrics.ConnOpened(kind)
		remote := ""
		if info.Remote != nil {
			remote = info.Remote.String()
		}
		remove := p.registry.Add(admin.Entry{ID: info.ID, User: u.Name, Remote: remote, Since: time.Now(), Kind: kind, TLS: info.TLS}, kick)
		return func() {
			remove()
			closed()
		}
	}
}

// snapshot returns the ring's snapshot (nil without a ring).
func (p *clusterParts) snapshot() *ring.Snapshot {
	if p.ring == nil {
		return nil
	}
	return p.ring.Snapshot()
}

// start runs the internal listener, joins the ring, and starts the HTTP
// endpoint and the admin socket. srv is the client listeners' server (the
// drain shuts it down).
func (p *clusterParts) start(ctx context.Context, authn auth.Authenticator, fcfg front.Config, factory front.SessionFactory, srv *server.Server) error {
	ctx, p.cancel = context.WithCancel(ctx)
	var err error
	if p.cluster != nil {
		icfg := fcfg
		icfg.Proxy = nil
		icfg.OnSession = p.onSession(httpapi.ConnInternal)
		icfg.Observer = frontObserver{m: p.metrics}
		icfg.TrustedNets = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
		icfg.Logger = p.log.With("part", "internal")
		if p.internal, err = front.New(icfg, p.cluster.InternalAuthenticator(authn), front.LocalRouter{}, factory); err != nil {
			return err
		}
		if p.internalLn, err = net.Listen("tcp", p.cfg.Cluster.InternalAddr); err != nil {
			return fmt.Errorf("cluster.internal_addr: %w", err)
		}
		p.wg.Go(func() {
			if err := p.cluster.ServeInternal(p.internalLn, p.internal); err != nil {
				p.log.Error("internal listener stopped", "err", err)
			}
		})
		p.wg.Go(func() {
			if err := p.ring.Join(ctx); err != nil {
				p.log.Error("ring join gave up", "err", err)
			}
		})
		ch, cancel := p.ring.Subscribe()
		p.wg.Go(func() {
			defer cancel()
			for {
				p.metrics.ObserveRing(p.ring.Snapshot())
				select {
				case <-ch:
				case <-ctx.Done():
					return
				}
			}
		})
	}

	hcfg := httpapi.DefaultConfig()
	hcfg.NodeName = p.nodeName
	if p.cfg.HTTP.HealthDir != "" {
		// The health directory's parent must be on the spool; the
		// directory itself is created by the first check.
		hcfg.SpoolRoot = filepath.Dir(p.cfg.HTTP.HealthDir)
		hcfg.HealthDir = p.cfg.HTTP.HealthDir
	}
	hcfg.Ring = p.snapshot
	hcfg.Gatherer = p.reg
	hcfg.Logger = p.log.With("part", "http")
	if p.health, err = httpapi.New(hcfg); err != nil {
		return err
	}
	p.health.SetServing(true)
	if p.cfg.HTTP.Addr != "" {
		ln, err := net.Listen("tcp", p.cfg.HTTP.Addr)
		if err != nil {
			return fmt.Errorf("http.addr: %w", err)
		}
		p.httpSrv = &http.Server{Handler: p.health, ReadHeaderTimeout: 10 * time.Second}
		p.wg.Go(func() {
			if err := p.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				p.log.Error("HTTP endpoint stopped", "err", err)
			}
		})
	}

	dcfg := cluster.DrainConfig{
		NotReady: func() { p.health.SetDraining(true) },
		Bye: func(ctx context.Context) error {
			err := srv.Shutdown(ctx)
			if p.internal != nil {
				err = errors.Join(err, p.internal.Shutdown(ctx))
			}
			return err
		},
		ByeTimeout: p.cfg.ShutdownGrace,
		Logger:     p.log.With("part", "drain"),
	}
	if p.ring != nil {
		dcfg.Ring = p.ring
		dcfg.Grace = p.cfg.Cluster.DrainGrace
	}
	if p.drainer, err = cluster.NewDrainer(dcfg); err != nil {
		return err
	}

	if p.cfg.Admin.Socket != "" {
		p.adminSrv, err = admin.Listen(admin.Config{
			SocketPath: p.cfg.Admin.Socket,
			NodeName:   p.nodeName,
			Ring:       p.snapshot,
			Registry:   p.registry,
			Drain:      p.drainer.Drain,
			Logger:     p.log.With("part", "admin"),
		})
		if err != nil {
			return err
		}
		p.wg.Go(func() {
			if err := p.adminSrv.Serve(); err != nil {
				p.log.Error("admin socket stopped", "err", err)
			}
		})
	}
	return nil
}

// stop closes what start opened, after a drain.
func (p *clusterParts) stop() {
	if p.cancel != nil {
		p.cancel()
	}
	if p.internalLn != nil {
		p.internalLn.Close()
	}
	if p.internal != nil {
		p.internal.Close()
	}
	if p.httpSrv != nil {
		p.httpSrv.Close()
	}
	if p.adminSrv != nil {
		p.adminSrv.Close()
	}
	if p.ring != nil {
		p.ring.Close()
	}
	p.wg.Wait()
}
