package ring

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Profile selects memberlist's timings.
type Profile string

const (
	// ProfileLAN is memberlist's LAN defaults: probes every second, a
	// crashed node is agreed dead in several seconds (6-10 s measured on
	// 10-50 nodes). For production.
	ProfileLAN Profile = "lan"
	// ProfileLocal is much faster timings for loopback and tests: probes
	// every 200 ms, a crashed node is agreed dead within about three
	// seconds. Too eager for a real network.
	ProfileLocal Profile = "local"
)

// Config configures a Ring. Build it with DefaultConfig and change what
// you need; New calls Validate.
type Config struct {
	// NodeName is this node's unique name in the cluster. Users are hashed
	// to names, so keep it stable across restarts. Required.
	// DefaultConfig sets the host name.
	NodeName string

	// InternalAddr is the "host:port" where peers reach this node's
	// internal IMAP listener; it is published in the node's metadata.
	// Required.
	InternalAddr string

	// Version is the software version published in the metadata (shown by
	// admin commands). "" publishes none.
	Version string

	// BindAddr is the IP address the gossip listeners (UDP and TCP) bind
	// to. "" or "0.0.0.0" means all IPv4 addresses.
	BindAddr string
	// BindPort is the gossip port (UDP and TCP). 0 lets the system pick
	// one (read it back with Ring.GossipAddr); DefaultConfig sets 7946.
	BindPort int

	// AdvertiseAddr is the IP address other nodes use to reach this one.
	// "" means the bind address, or the first private address when bound
	// to all addresses.
	AdvertiseAddr string
	// AdvertisePort is the port other nodes use to reach this one.
	// 0 means the bind port.
	AdvertisePort int

	// Seeds are "host:port" gossip addresses of nodes to join (a host
	// without port means BindPort). This node's own address may be in the
	// list. Empty: Join does nothing and the node starts a cluster alone.
	Seeds []string

	// SecretKey is the base64 of a 16, 24 or 32 byte AES key that encrypts
	// and authenticates all gossip. "" means gossip in clear text. Every
	// node of a cluster needs the same key.
	SecretKey string

	// ClusterLabel, when not "", is sent with every gossip packet and
	// packets with another label are dropped, so two clusters on one
	// network cannot merge by mistake. At most 255 bytes.
	ClusterLabel string

	// Profile selects the gossip timings; "" means ProfileLAN.
	Profile Profile

	// BroadcastTimeout bounds how long Leave and SetState wait for their
	// news to be sent to other nodes. 0 means 5 s.
	BroadcastTimeout time.Duration

	// JoinRetryMax caps the back-off between failed join attempts
	// (starting at 250 ms and doubling). 0 means 30 s.
	JoinRetryMax time.Duration

	// RejoinInterval, when > 0, makes the ring join the seeds again at
	// this interval after it was started, so that two halves of a cluster
	// that declared each other dead during a network split find each other
	// again. 0 turns it off.
	RejoinInterval time.Duration

	// DeadNodeReclaimTime, when > 0, lets a node name that was declared
	// dead come back with another address after this long (a replaced
	// box). 0 means a dead name keeps its old address until memberlist
	// forgets it.
	DeadNodeReclaimTime time.Duration
}

// Defaults used when a duration field is 0.
const (
	defaultBroadcastTimeout = 5 * time.Second
	defaultJoinRetryMax     = 30 * time.Second
	joinRetryMin            = 250 * time.Millisecond
	maxLabelLen             = 255
	maxNodeNameLen          = 255
)

// DefaultConfig returns the defaults: the host name as node name, gossip
// on 0.0.0.0:7946, LAN timings, rejoin every 5 minutes. InternalAddr must
// still be set.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		NodeName:       host,
		BindAddr:       "0.0.0.0",
		BindPort:       7946,
		Profile:        ProfileLAN,
		RejoinInterval: 5 * time.Minute,
	}
}

// ErrConfig is wrapped by every error Validate returns.
var ErrConfig = errors.New("ring: invalid config")

// Validate checks the configuration.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if c.NodeName == "" {
		return bad("node name is empty")
	}
	if len(c.NodeName) > maxNodeNameLen {
		return bad("node name is longer than %d bytes", maxNodeNameLen)
	}
	if c.InternalAddr == "" {
		return bad("internal address is empty")
	}
	if _, port, err := net.SplitHostPort(c.InternalAddr); err != nil || port == "" {
		return bad("internal address %q is not host:port", c.InternalAddr)
	}
	if _, err := (nodeMeta{State: StateAlive, Addr: c.InternalAddr, Version: c.Version}).encode(); err != nil {
		return bad("internal address and version too long: %v", err)
	}
	if c.BindAddr != "" && net.ParseIP(c.BindAddr) == nil {
		return bad("bind address %q is not an IP address", c.BindAddr)
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		return bad("bind port %d out of range", c.BindPort)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		return bad("advertise address %q is not an IP address", c.AdvertiseAddr)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		return bad("advertise port %d out of range", c.AdvertisePort)
	}
	for _, s := range c.Seeds {
		if s == "" {
			return bad("empty seed address")
		}
	}
	if _, err := c.secretKey(); err != nil {
		return bad("%v", err)
	}
	if len(c.ClusterLabel) > maxLabelLen {
		return bad("cluster label is longer than %d bytes", maxLabelLen)
	}
	switch c.Profile {
	case "", ProfileLAN, ProfileLocal:
	default:
		return bad("unknown profile %q (want %q or %q)", c.Profile, ProfileLAN, ProfileLocal)
	}
	if c.BroadcastTimeout < 0 || c.JoinRetryMax < 0 || c.RejoinInterval < 0 || c.DeadNodeReclaimTime < 0 {
		return bad("negative duration")
	}
	return nil
}

// secretKey decodes SecretKey; nil when none is set.
func (c Config) secretKey() ([]byte, error) {
	if c.SecretKey == "" {
		return nil, nil
	}
	key, err := base64.StdEncoding.DecodeString(c.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("secret key is not base64: %w", err)
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, fmt.Errorf("secret key is %d bytes, want 16, 24 or 32", len(key))
}

func (c Config) broadcastTimeout() time.Duration {
	if c.BroadcastTimeout > 0 {
		return c.BroadcastTimeout
	}
	return defaultBroadcastTimeout
}

func (c Config) joinRetryMax() time.Duration {
	if c.JoinRetryMax > 0 {
		return c.JoinRetryMax
	}
	return defaultJoinRetryMax
}
