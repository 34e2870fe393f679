package main

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is one load test run.
type Config struct {
	// Addrs are the servers' IMAP addresses (host:port). With more than one,
	// connections are spread over them as a layer-4 switch would (Pick).
	Addrs []string
	// Pick is "roundrobin" or "random".
	Pick string
	// TLS is "none", "starttls" or "implicit".
	TLS string
	// InsecureTLS skips certificate verification (test servers).
	InsecureTLS bool

	// Users is the number of distinct users; their names are
	// fmt.Sprintf(UserFormat, UserStart+i).
	Users      int
	UserStart  int
	UserFormat string
	// Password is the same for every user.
	Password string
	// Conns is how many clients run per user, each with the user's profile.
	Conns int
	// Mix gives each profile a weight; users are assigned profiles in
	// proportion (deterministic for a seed).
	Mix map[string]float64

	// Duration of the measured run; Ramp spreads client starts over its
	// beginning.
	Duration time.Duration
	Ramp     time.Duration
	// Think is the base pause between a client's steps (profiles scale it).
	Think time.Duration
	// Rate caps the commands per second over all clients; 0 means no cap.
	Rate float64
	// CommandTimeout bounds each command.
	CommandTimeout time.Duration

	// SourceIPs are local addresses connections are made from, in turn, so
	// tens of thousands of connections fit in the port range.
	SourceIPs []netip.Addr

	// Check turns on the consistency checker.
	Check bool
	// Seed makes profile assignment and message content repeatable.
	Seed int64

	// JSON and HTML, if set, are files the report is written to.
	JSON string
	HTML string
	// Progress prints a live line every second to standard error.
	Progress bool
}

// Profiles known to the tool.
var profileNames = []string{"webmail", "idle", "desktop2", "mobile", "heavy"}

// DefaultConfig is a small mixed run against one local server.
func DefaultConfig() Config {
	return Config{
		Addrs:          []string{"127.0.0.1:1143"},
		Pick:           "roundrobin",
		TLS:            "none",
		Users:          10,
		UserStart:      1,
		UserFormat:     "user%d",
		Password:       "password",
		Conns:          1,
		Mix:            map[string]float64{"webmail": 4, "idle": 2, "desktop2": 1, "mobile": 2, "heavy": 1},
		Duration:       30 * time.Second,
		Ramp:           2 * time.Second,
		Think:          200 * time.Millisecond,
		CommandTimeout: 30 * time.Second,
		Check:          true,
		Seed:           1,
		Progress:       true,
	}
}

// Validate reports the first thing wrong with the config.
func (c *Config) Validate() error {
	if len(c.Addrs) == 0 {
		return errors.New("no server address")
	}
	for _, a := range c.Addrs {
		if _, _, err := splitHostPort(a); err != nil {
			return fmt.Errorf("address %q: %w", a, err)
		}
	}
	switch c.Pick {
	case "roundrobin", "random":
	default:
		return fmt.Errorf("pick %q: want roundrobin or random", c.Pick)
	}
	switch c.TLS {
	case "none", "starttls", "implicit":
	default:
		return fmt.Errorf("tls %q: want none, starttls or implicit", c.TLS)
	}
	if c.Users < 1 || c.Conns < 1 {
		return errors.New("users and conns must be at least 1")
	}
	if !strings.Contains(c.UserFormat, "%d") {
		return fmt.Errorf("user format %q has no %%d", c.UserFormat)
	}
	if len(c.Mix) == 0 {
		return errors.New("empty profile mix")
	}
	var total float64
	for name, w := range c.Mix {
		if !knownProfile(name) {
			return fmt.Errorf("unknown profile %q (known: %s)", name, strings.Join(profileNames, ", "))
		}
		if w < 0 {
			return fmt.Errorf("profile %q: negative weight", name)
		}
		total += w
	}
	if total == 0 {
		return errors.New("profile weights add up to zero")
	}
	if c.Duration <= 0 {
		return errors.New("duration must be positive")
	}
	if c.Ramp < 0 || c.Think < 0 || c.Rate < 0 || c.CommandTimeout <= 0 {
		return errors.New("ramp, think and rate must not be negative; command timeout must be positive")
	}
	return nil
}

func knownProfile(name string) bool {
	for _, p := range profileNames {
		if p == name {
			return true
		}
	}
	return false
}

func splitHostPort(a string) (string, int, error) {
	i := strings.LastIndexByte(a, ':')
	if i < 0 {
		return "", 0, errors.New("missing port")
	}
	port, err := strconv.Atoi(a[i+1:])
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, errors.New("bad port")
	}
	return a[:i], port, nil
}

// parseMix reads "webmail=4,idle=2".
func parseMix(s string) (map[string]float64, error) {
	mix := map[string]float64{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, weight, ok := strings.Cut(part, "=")
		w := 1.0
		if ok {
			var err error
			w, err = strconv.ParseFloat(weight, 64)
			if err != nil {
				return nil, fmt.Errorf("mix %q: %w", part, err)
			}
		}
		mix[strings.TrimSpace(name)] = w
	}
	return mix, nil
}

// parseSourceIPs reads "127.0.0.1-127.0.0.50" or a comma list.
func parseSourceIPs(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := netip.ParseAddr(lo)
		if err != nil {
			return nil, fmt.Errorf("source address %q: %w", lo, err)
		}
		if !isRange {
			out = append(out, a)
			continue
		}
		b, err := netip.ParseAddr(hi)
		if err != nil {
			return nil, fmt.Errorf("source address %q: %w", hi, err)
		}
		if b.Less(a) {
			return nil, fmt.Errorf("source range %q is backwards", part)
		}
		for x := a; ; x = x.Next() {
			out = append(out, x)
			if x == b || len(out) > 1<<16 {
				break
			}
		}
	}
	return out, nil
}

// assignProfiles gives users profiles in proportion to the weights, by
// smooth weighted round robin: deterministic, and every profile with a
// weight shows up as soon as there are users enough.
func assignProfiles(mix map[string]float64, users int) []string {
	names := make([]string, 0, len(mix))
	var total float64
	for n, w := range mix {
		if w > 0 {
			names = append(names, n)
			total += w
		}
	}
	sort.Strings(names)
	current := make([]float64, len(names))
	out := make([]string, users)
	for i := range out {
		best := 0
		for j, n := range names {
			current[j] += mix[n]
			if current[j] > current[best] {
				best = j
			}
		}
		current[best] -= total
		out[i] = names[best]
	}
	return out
}
