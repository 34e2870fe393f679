// Package config holds nfsimap's node configuration: the Config struct with
// its defaults and checks, and its loading from a YAML file, NFSIMAP_*
// environment variables and command-line flags (through viper; no other
// package reads configuration files).
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/nfsimap/nfsimap/node/maildir"
)

// Example is the commented example configuration (example.yaml).
//
//go:embed example.yaml
var Example []byte

// Config is the configuration of one node. Field tags name the YAML keys;
// the environment variable of a key is NFSIMAP_ and the key upper-cased
// with '.' as '_' (listen.imap: NFSIMAP_LISTEN_IMAP).
type Config struct {
	Listen Listen `mapstructure:"listen"`
	TLS    TLS    `mapstructure:"tls"`
	// TrustedNetworks are networks (CIDR prefixes or single addresses)
	// from which passwords may be sent without TLS. Empty: nowhere.
	// Default: loopback.
	TrustedNetworks []string `mapstructure:"trusted_networks"`
	Auth            Auth     `mapstructure:"auth"`
	Spool           Spool    `mapstructure:"spool"`
	// IndexDir is the directory of the disposable local index (on local
	// disk, never on the spool).
	IndexDir string `mapstructure:"index_dir"`
	// IndexBudget is the most bytes the local index may use on disk; above
	// it the coldest users' index files are removed (they rebuild from
	// the spool). 0: no budget.
	IndexBudget int64 `mapstructure:"index_budget"`
	// PollInterval is how often a selected mailbox is checked for changes
	// made elsewhere.
	PollInterval time.Duration `mapstructure:"poll_interval"`
	Timeouts     Timeouts      `mapstructure:"timeouts"`
	// ShutdownGrace is how long SIGTERM waits for clients to leave after
	// telling them BYE, before closing what is left.
	ShutdownGrace time.Duration `mapstructure:"shutdown_grace"`
	SpecialUse    SpecialUse    `mapstructure:"special_use"`
	// AppendLimit is the largest message APPEND accepts, in bytes.
	AppendLimit int64   `mapstructure:"append_limit"`
	Limits      Limits  `mapstructure:"limits"`
	Log         Log     `mapstructure:"log"`
	Cluster     Cluster `mapstructure:"cluster"`
	HTTP        HTTP    `mapstructure:"http"`
	Admin       Admin   `mapstructure:"admin"`
	// ProxyNetworks are the load balancers allowed to send a PROXY
	// protocol header (v1 or v2) on the client listeners; from them the
	// header is required. Empty: none.
	ProxyNetworks []string `mapstructure:"proxy_networks"`
}

// Listen holds the client listeners. An empty address disables one.
type Listen struct {
	// IMAP is the plain IMAP address; STARTTLS is offered when TLS is
	// configured.
	IMAP string `mapstructure:"imap"`
	// IMAPS is the implicit-TLS address; it needs TLS.
	IMAPS string `mapstructure:"imaps"`
}

// TLS names the certificate chain and key (PEM). Both are re-read on
// SIGHUP. Empty: no TLS.
type TLS struct {
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
}

// Auth configures authentication.
type Auth struct {
	// PasswdFile is a Dovecot passwd-file.
	PasswdFile string `mapstructure:"passwd_file"`
}

// Spool says where mail lives; see maildir.Layout for the %-variables.
type Spool struct {
	// Inbox is the template of the INBOX maildir path.
	Inbox string `mapstructure:"inbox"`
	// FolderRoot is the template of the folder root; empty: folders live
	// inside the INBOX maildir (Maildir++).
	FolderRoot string `mapstructure:"folder_root"`
}

// Timeouts bound the waits for clients.
type Timeouts struct {
	// PreAuth bounds the wait for each command before login and the TLS
	// handshake.
	PreAuth time.Duration `mapstructure:"pre_auth"`
	// Idle bounds the wait for the next command after login (and an
	// IDLE); RFC 3501 asks for at least 30 minutes.
	Idle time.Duration `mapstructure:"idle"`
	// Command bounds each read inside a command (literal data).
	Command time.Duration `mapstructure:"command"`
	// Write bounds each write to a client.
	Write time.Duration `mapstructure:"write"`
}

// SpecialUse names the folders that get RFC 6154 attributes. Empty: none.
type SpecialUse struct {
	Sent    string `mapstructure:"sent"`
	Drafts  string `mapstructure:"drafts"`
	Trash   string `mapstructure:"trash"`
	Junk    string `mapstructure:"junk"`
	Archive string `mapstructure:"archive"`
}

// Limits protect the node from clients.
type Limits struct {
	// MaxLineLength is the longest command line, literals not counted.
	MaxLineLength int `mapstructure:"max_line_length"`
	// MaxAuthLiteral is the largest literal accepted before login.
	MaxAuthLiteral int64 `mapstructure:"max_auth_literal"`
	// FailDelay is the wait before answering a failed login; it doubles
	// with each failure on a connection, up to FailDelayMax.
	FailDelay    time.Duration `mapstructure:"fail_delay"`
	FailDelayMax time.Duration `mapstructure:"fail_delay_max"`
	// MaxAuthFailures closes a connection after that many failed logins.
	MaxAuthFailures int `mapstructure:"max_auth_failures"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `mapstructure:"level"`
	// Format is text or json.
	Format string `mapstructure:"format"`
}

// Cluster configures the ring of nodes (used by the cluster work; empty
// NodeName means a single node).
type Cluster struct {
	// NodeName is this node's unique name in the ring; empty: the host name.
	NodeName string `mapstructure:"node_name"`
	// InternalAddr is the address peers proxy users' connections to.
	InternalAddr string `mapstructure:"internal_addr"`
	// Secret authenticates peers to each other; SecretFile reads it from a
	// file instead.
	Secret     string `mapstructure:"secret"`
	SecretFile string `mapstructure:"secret_file"`
	// RingBind is the gossip address; empty: no cluster.
	RingBind string `mapstructure:"ring_bind"`
	// Seeds are gossip addresses of other nodes to join.
	Seeds []string `mapstructure:"seeds"`
	// TLSCertFile and TLSKeyFile are the PEM certificate and key for TLS
	// between nodes (the internal listener and connections to peers);
	// empty: plain TCP. TLSCAFile is the CA that signed the nodes'
	// certificates; empty: the system's roots.
	TLSCertFile string `mapstructure:"tls_cert_file"`
	TLSKeyFile  string `mapstructure:"tls_key_file"`
	TLSCAFile   string `mapstructure:"tls_ca_file"`
	// DialTimeout bounds a login at a peer; then the next is tried, and
	// finally the user is served here.
	DialTimeout time.Duration `mapstructure:"dial_timeout"`
	// DrainGrace is how long a draining node keeps serving its sessions
	// (peers and switches route new clients elsewhere meanwhile) before it
	// tells them BYE and leaves the ring.
	DrainGrace time.Duration `mapstructure:"drain_grace"`
	// Profile selects gossip timings: lan, or local (fast; tests).
	Profile string `mapstructure:"profile"`
	// RejoinInterval is how often the node joins the seeds again, so the
	// halves of a healed network split merge (a user may be served on two
	// nodes until then); 0 means the ring's default (5 min).
	RejoinInterval time.Duration `mapstructure:"rejoin_interval"`
}

// HTTP configures the health and metrics endpoint.
type HTTP struct {
	// Addr is its address; empty: none.
	Addr string `mapstructure:"addr"`
	// HealthDir is a directory on the spool where /healthz takes and
	// releases a dot-lock; empty: /healthz does not check the spool.
	HealthDir string `mapstructure:"health_dir"`
}

// Admin configures the local admin socket.
type Admin struct {
	// Socket is the unix socket of nfsimap ring|where|who|kick|drain;
	// empty: none.
	Socket string `mapstructure:"socket"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Listen:          Listen{IMAP: ":143"},
		TrustedNetworks: []string{"127.0.0.0/8", "::1/128"},
		Auth:            Auth{PasswdFile: "/etc/nfsimap/passwd"},
		Spool:           Spool{Inbox: "%h/Maildir"},
		IndexDir:        "/var/cache/nfsimap/index",
		PollInterval:    10 * time.Second,
		Timeouts: Timeouts{
			PreAuth: 60 * time.Second,
			Idle:    31 * time.Minute,
			Command: 5 * time.Minute,
			Write:   5 * time.Minute,
		},
		ShutdownGrace: 30 * time.Second,
		SpecialUse: SpecialUse{
			Sent: "Sent", Drafts: "Drafts", Trash: "Trash", Junk: "Junk", Archive: "Archive",
		},
		AppendLimit: 50 << 20,
		Limits: Limits{
			MaxLineLength:   64 * 1024,
			MaxAuthLiteral:  8 * 1024,
			FailDelay:       time.Second,
			FailDelayMax:    16 * time.Second,
			MaxAuthFailures: 10,
		},
		Log:     Log{Level: "info", Format: "text"},
		Cluster: Cluster{DialTimeout: 2 * time.Second, DrainGrace: 30 * time.Second, Profile: "lan", RejoinInterval: 30 * time.Second},
		Admin:   Admin{Socket: "/run/nfsimap/admin.sock"},
	}
}

// Validate reports every problem of the configuration, one per line.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	checkAddr := func(key, addr string) {
		if addr == "" {
			return
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(key, "%q is not host:port", addr)
		}
	}
	if c.Listen.IMAP == "" && c.Listen.IMAPS == "" {
		bad("listen", "no listener: set listen.imap or listen.imaps")
	}
	checkAddr("listen.imap", c.Listen.IMAP)
	checkAddr("listen.imaps", c.Listen.IMAPS)
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls", "set both cert_file and key_file, or neither")
	}
	if c.Listen.IMAPS != "" && c.TLS.CertFile == "" {
		bad("listen.imaps", "needs tls.cert_file and tls.key_file")
	}
	if _, err := c.TrustedPrefixes(); err != nil {
		errs = append(errs, err)
	}
	if c.Auth.PasswdFile == "" {
		bad("auth.passwd_file", "required")
	}
	if c.Spool.Inbox == "" {
		bad("spool.inbox", "required")
	} else if err := (maildir.Layout{Inbox: c.Spool.Inbox, Root: c.Spool.FolderRoot}).Validate(); err != nil {
		bad("spool", "%v", err)
	}
	if c.IndexBudget < 0 {
		bad("index_budget", "must not be negative")
	}
	if c.PollInterval <= 0 {
		bad("poll_interval", "must be positive")
	}
	if c.Timeouts.PreAuth <= 0 || c.Timeouts.Command <= 0 || c.Timeouts.Write <= 0 {
		bad("timeouts", "pre_auth, command and write must be positive")
	}
	if c.Timeouts.Idle < 30*time.Minute {
		bad("timeouts.idle", "%v is below RFC 3501's 30 minutes", c.Timeouts.Idle)
	}
	if c.ShutdownGrace < 0 {
		bad("shutdown_grace", "must not be negative")
	}
	seen := map[string]string{}
	for key, name := range map[string]string{
		"sent": c.SpecialUse.Sent, "drafts": c.SpecialUse.Drafts, "trash": c.SpecialUse.Trash,
		"junk": c.SpecialUse.Junk, "archive": c.SpecialUse.Archive,
	} {
		if name == "" {
			continue
		}
		if strings.EqualFold(name, "INBOX") {
			bad("special_use."+key, "INBOX cannot be a special-use folder")
		}
		if other, dup := seen[name]; dup {
			bad("special_use."+key, "%q is also special_use.%s", name, other)
		}
		seen[name] = key
	}
	if c.AppendLimit <= 0 || c.AppendLimit > 1<<32-1 {
		bad("append_limit", "%d is not between 1 and 4294967295", c.AppendLimit)
	}
	if c.Limits.MaxLineLength < 1024 {
		bad("limits.max_line_length", "%d is below RFC 2683's 1000 octets", c.Limits.MaxLineLength)
	}
	if c.Limits.MaxAuthLiteral < 256 {
		bad("limits.max_auth_literal", "%d is too small for a login", c.Limits.MaxAuthLiteral)
	}
	if c.Limits.FailDelay < 0 || c.Limits.FailDelayMax < c.Limits.FailDelay {
		bad("limits", "need 0 <= fail_delay <= fail_delay_max")
	}
	if c.Limits.MaxAuthFailures < 1 {
		bad("limits.max_auth_failures", "must be at least 1")
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	switch strings.ToLower(c.Log.Format) {
	case "text", "json":
	default:
		bad("log.format", "%q is not text or json", c.Log.Format)
	}
	checkAddr("cluster.internal_addr", c.Cluster.InternalAddr)
	checkAddr("cluster.ring_bind", c.Cluster.RingBind)
	for _, s := range c.Cluster.Seeds {
		checkAddr("cluster.seeds", s)
	}
	if c.Cluster.Secret != "" && c.Cluster.SecretFile != "" {
		bad("cluster", "set secret or secret_file, not both")
	}
	checkAddr("http.addr", c.HTTP.Addr)
	if c.Cluster.RingBind != "" {
		if c.Cluster.InternalAddr == "" {
			bad("cluster.internal_addr", "required with cluster.ring_bind")
		}
		if c.Cluster.Secret == "" && c.Cluster.SecretFile == "" {
			bad("cluster.secret", "required with cluster.ring_bind (or secret_file)")
		}
	}
	if (c.Cluster.TLSCertFile == "") != (c.Cluster.TLSKeyFile == "") {
		bad("cluster", "set both tls_cert_file and tls_key_file, or neither")
	}
	if c.Cluster.DialTimeout <= 0 || c.Cluster.DrainGrace < 0 {
		bad("cluster", "dial_timeout must be positive and drain_grace not negative")
	}
	switch c.Cluster.Profile {
	case "lan", "local":
	default:
		bad("cluster.profile", "%q is not lan or local", c.Cluster.Profile)
	}
	if _, err := ParsePrefixes("proxy_networks", c.ProxyNetworks); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// TrustedPrefixes parses TrustedNetworks.
func (c Config) TrustedPrefixes() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(c.TrustedNetworks))
	for _, s := range c.TrustedNetworks {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted_networks: %q is neither a CIDR prefix nor an address", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// ParsePrefixes parses CIDR prefixes or single addresses; key names the
// setting in errors.
func ParsePrefixes(key string, list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is neither a CIDR prefix nor an address", key, s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
