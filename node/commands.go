package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/spf13/pflag"

	"github.com/nfsimap/nfsimap/localindex"
	"github.com/nfsimap/nfsimap/node/admin"
	"github.com/nfsimap/nfsimap/node/auth"
	"github.com/nfsimap/nfsimap/node/config"
	"github.com/nfsimap/nfsimap/node/demo"
	"github.com/nfsimap/nfsimap/node/front"
	"github.com/nfsimap/nfsimap/node/httpapi"
	"github.com/nfsimap/nfsimap/node/maildir"
	"github.com/nfsimap/nfsimap/node/server"
	"github.com/nfsimap/nfsimap/node/session"
)

// serveFlags declares -c and one flag per configuration key.
func serveFlags(name string) (*pflag.FlagSet, *string) {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	path := fs.StringP("config", "c", "", "configuration file (YAML)")
	for _, k := range config.Keys() {
		fs.String(k, "", "overrides "+k)
	}
	return fs, path
}

// loadConfig parses serve-style flags and loads the configuration.
func loadConfig(name string, args []string, needFile bool) (config.Config, error) {
	fs, path := serveFlags(name)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return config.Config{}, err
	}
	if needFile && *path == "" {
		return config.Config{}, config.ErrNoConfig
	}
	// Only flags given on the command line override.
	set := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.Visit(func(f *pflag.Flag) {
		if f.Name != "config" {
			set.AddFlag(f)
		}
	})
	cfg, err := config.Load(*path, set)
	if err != nil {
		return config.Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return config.Config{}, err
	}
	return cfg, nil
}

func cmdConfig(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("want: config check -c FILE | config example")
	}
	switch args[0] {
	case "example":
		_, err := stdout.Write(config.Example)
		return err
	case "check":
		cfg, err := loadConfig("config check", args[1:], true)
		if err != nil {
			return err
		}
		out, err := config.Marshal(cfg)
		if err != nil {
			return err
		}
		_, err = stdout.Write(out)
		return err
	}
	return fmt.Errorf("unknown config command %q", args[0])
}

func cmdPw(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := pflag.NewFlagSet("pw", pflag.ContinueOnError)
	scheme := fs.StringP("scheme", "s", "SHA512-CRYPT", "password scheme")
	pass := fs.StringP("password", "p", "", "password (default: first line of stdin)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !fs.Changed("password") {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		*pass = strings.TrimRight(line, "\r\n")
	}
	if *pass == "" {
		return errors.New("empty password")
	}
	h, err := auth.Hash(*scheme, *pass, rand.Reader)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, h)
	return err
}

func cmdServe(ctx context.Context, args []string, stderr io.Writer, sigs <-chan os.Signal) error {
	cfg, err := loadConfig("serve", args, true)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, stderr, sigs, nil)
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer, sigs <-chan os.Signal) error {
	fs := pflag.NewFlagSet("demo", pflag.ContinueOnError)
	dir := fs.String("dir", "var", "directory for the demo spool, passwd-file and config")
	addr := fs.String("listen", "127.0.0.1:1143", "IMAP address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	path, err := demo.Setup(*dir, *addr)
	if err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(*addr)
	fmt.Fprintf(stdout, demoHelp, path, *addr, host, port)
	cfg, err := config.LoadFile(path)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, stderr, sigs, nil)
}

const demoHelp = `nfsimap demo: config %[1]s
Serving IMAP on %[2]s; log in as demo / demo (INBOX and the folder Archive).
Connect with:
  python3 -c 'import imaplib; M = imaplib.IMAP4("%[3]s", %[4]s); M.login("demo", "demo"); print(M.select("INBOX"))'
  mutt -f imap://demo@%[3]s:%[4]s/INBOX
  mbsync: IMAPAccount demo / Host %[3]s / Port %[4]s / User demo / Pass demo / SSLType None
Stop with Ctrl-C.
`

// newLogger makes the logger the configuration asks for.
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(c.Level) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(c.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// sessionFactory adapts node/session to the front; m (may be nil) counts
// its spool operations and lock waits.
func sessionFactory(ctx context.Context, cfg config.Config, log *slog.Logger, m *httpapi.Metrics) (front.SessionFactory, error) {
	scfg := session.DefaultConfig()
	spoolHooks(&scfg.Maildir, m)
	scfg.Layout = maildir.Layout{Inbox: cfg.Spool.Inbox, Root: cfg.Spool.FolderRoot}
	scfg.PollInterval = cfg.PollInterval
	scfg.AppendLimit = uint32(cfg.AppendLimit)
	su := cfg.SpecialUse
	scfg.SpecialUse = map[string]imap.MailboxAttr{}
	for name, attr := range map[string]imap.MailboxAttr{
		su.Sent: imap.MailboxAttrSent, su.Drafts: imap.MailboxAttrDrafts, su.Trash: imap.MailboxAttrTrash,
		su.Junk: imap.MailboxAttrJunk, su.Archive: imap.MailboxAttrArchive,
	} {
		if name != "" {
			scfg.SpecialUse[name] = attr
		}
	}
	// The local index: a node reads nothing from it at start-up, only the
	// files of the users it serves. Eviction runs until ctx ends.
	icfg := localindex.DefaultConfig()
	icfg.Dir = cfg.IndexDir
	icfg.Budget = cfg.IndexBudget
	index, err := localindex.Open(icfg, log.With("part", "localindex"))
	if err != nil {
		return nil, err
	}
	go index.Run(ctx)
	scfg.Index = index
	f, err := session.NewFactory(scfg, log)
	if err != nil {
		return nil, err
	}
	return f.New, nil
}

// ready is told the bound addresses once the node listens (tests).
type ready func(srv *server.Server)

// serve runs a node until SIGTERM or SIGINT on sigs (or ctx ends); SIGHUP
// reloads the TLS certificate.
func serve(ctx context.Context, cfg config.Config, logw io.Writer, sigs <-chan os.Signal, onReady ready) error {
	log := newLogger(cfg.Log, logw)
	authn, err := auth.NewPasswdFile(auth.Config{Path: cfg.Auth.PasswdFile}, log.With("part", "auth"))
	if err != nil {
		return err
	}
	parts, err := newClusterParts(cfg, log)
	if err != nil {
		return err
	}
	defer parts.stop()
	factory, err := sessionFactory(ctx, cfg, log.With("part", "session"), parts.metrics)
	if err != nil {
		return err
	}
	var certs *server.CertStore
	fcfg := front.DefaultConfig()
	if cfg.TLS.CertFile != "" {
		if certs, err = server.LoadCertStore(cfg.TLS.CertFile, cfg.TLS.KeyFile); err != nil {
			return err
		}
		fcfg.TLSConfig = certs.TLSConfig()
	}
	if fcfg.TrustedNets, err = cfg.TrustedPrefixes(); err != nil {
		return err
	}
	fcfg.Version = version
	fcfg.NodeName = cfg.Cluster.NodeName
	if fcfg.NodeName == "" {
		fcfg.NodeName, _ = os.Hostname()
	}
	fcfg.PreAuthTimeout = cfg.Timeouts.PreAuth
	fcfg.IdleTimeout = cfg.Timeouts.Idle
	fcfg.CommandTimeout = cfg.Timeouts.Command
	fcfg.WriteTimeout = cfg.Timeouts.Write
	fcfg.MaxLineLength = cfg.Limits.MaxLineLength
	fcfg.MaxAuthLiteral = cfg.Limits.MaxAuthLiteral
	fcfg.FailDelay = cfg.Limits.FailDelay
	fcfg.FailDelayMax = cfg.Limits.FailDelayMax
	fcfg.MaxAuthFailures = cfg.Limits.MaxAuthFailures
	fcfg.Logger = log.With("part", "front")
	parts.configureFront(&fcfg)
	fr, err := front.New(fcfg, authn, parts.router(), factory)
	if err != nil {
		return err
	}
	scfg := server.Config{IMAPAddr: cfg.Listen.IMAP, IMAPSAddr: cfg.Listen.IMAPS, TLS: fcfg.TLSConfig, Logger: log.With("part", "server")}
	if scfg.ProxyNetworks, err = config.ParsePrefixes("proxy_networks", cfg.ProxyNetworks); err != nil {
		return err
	}
	srv, err := server.New(scfg, fr)
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	if err := parts.start(ctx, authn, fcfg, factory, srv); err != nil {
		srv.Shutdown(context.Background())
		return err
	}
	log.Info("nfsimap started", "version", version)
	if onReady != nil {
		onReady(srv)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	for {
		select {
		case err := <-served:
			if !parts.drainer.Draining() {
				return err
			}
			// Drained through the admin socket: the node stays up, out of
			// the ring and not ready, until it is told to stop.
			log.Info("drained; waiting for SIGTERM")
			served = nil
			continue
		case <-ctx.Done():
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				if certs == nil {
					log.Info("SIGHUP: no TLS certificate to reload")
				} else if err := certs.Reload(); err != nil {
					log.Error("SIGHUP: TLS certificate not reloaded", "err", err)
				} else {
					log.Info("SIGHUP: TLS certificate reloaded")
				}
				continue
			}
			log.Info("shutting down", "signal", sig.String(), "grace", cfg.ShutdownGrace)
		}
		break
	}
	// SIGTERM drains: draining in gossip and readiness off, the drain
	// grace, BYE [UNAVAILABLE] to the sessions (shutdown_grace), leave the
	// ring. A second signal cuts the drain grace short.
	start := time.Now()
	dctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-parts.drainer.Done():
		}
	}()
	if err := parts.drainer.Drain(dctx); err != nil {
		log.Warn("drain", "err", err)
	}
	<-parts.drainer.Done()
	if served != nil {
		<-served
	}
	log.Info("stopped", "took", time.Since(start))
	return nil
}

// cmdAdmin runs nfsimap ring|where|who|kick|drain against a node's admin
// socket: -s SOCKET, or admin.socket of the config file given with -c.
func cmdAdmin(ctx context.Context, cmd string, args []string, stdout io.Writer) error {
	fs := pflag.NewFlagSet(cmd, pflag.ContinueOnError)
	socket := fs.StringP("socket", "s", "", "admin socket (default: admin.socket of the config, or "+config.DefaultConfig().Admin.Socket+")")
	path := fs.StringP("config", "c", "", "configuration file to read admin.socket from")
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", admin.ErrUsage, err)
	}
	if *socket == "" {
		cfg := config.DefaultConfig()
		if *path != "" {
			var err error
			if cfg, err = config.LoadFile(*path); err != nil {
				return err
			}
		}
		*socket = cfg.Admin.Socket
	}
	return admin.Run(ctx, *socket, cmd, fs.Args(), stdout)
}
