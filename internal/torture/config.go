package torture

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Environment variables that change a torture run.
const (
	// EnvDuration is the run time of each variant (a Go duration).
	EnvDuration = "NFSIMAP_TORTURE_DURATION"
	// EnvWriters is the number of writer processes (2-4).
	EnvWriters = "NFSIMAP_TORTURE_WRITERS"
	// EnvKeep names a directory where each variant's spool, journals and
	// mount traces are kept for a post-mortem.
	EnvKeep = "NFSIMAP_TORTURE_KEEP"
	// EnvSeed fixes the random seed (decimal); unset means from the clock.
	EnvSeed = "NFSIMAP_TORTURE_SEED"
)

// Config sizes a torture run.
type Config struct {
	// Duration is how long the writers run in each variant.
	Duration time.Duration
	// Writers is the number of writer processes, each on its own mount.
	Writers int
	// Sessions is the number of concurrent sessions (goroutines, each
	// with its own mailbox handles) per writer process.
	Sessions int
	// Mailboxes are the IMAP names everybody works in; the first must be
	// INBOX.
	Mailboxes []string
	// MTARate is the MTA's deliveries per second.
	MTARate int
	// MaxLive makes a session expunge more once it owns this many
	// messages, which bounds the mailbox sizes.
	MaxLive int
	// StaleAge is the dot-lock stale age: locks of a killed writer are
	// broken after it.
	StaleAge time.Duration
	// Seed seeds everything random; 0 means from the clock.
	Seed uint64
}

// DefaultConfig is the short run for CI (all variants well under three
// minutes).
func DefaultConfig() Config {
	return Config{
		Duration:  8 * time.Second,
		Writers:   3,
		Sessions:  2,
		Mailboxes: []string{"INBOX", "Archive", "Sent"},
		MTARate:   20,
		MaxLive:   30,
		StaleAge:  3 * time.Second,
	}
}

// Validate reports an unusable configuration.
func (c Config) Validate() error {
	switch {
	case c.Duration <= 0:
		return errors.New("torture: Duration must be positive")
	case c.Writers < 1 || c.Writers > 16:
		return errors.New("torture: Writers must be 1..16")
	case c.Sessions < 1:
		return errors.New("torture: Sessions must be at least 1")
	case len(c.Mailboxes) < 2 || c.Mailboxes[0] != "INBOX":
		return errors.New("torture: need INBOX first and at least one more mailbox")
	case c.MTARate < 1 || c.MaxLive < 1:
		return errors.New("torture: MTARate and MaxLive must be positive")
	case c.StaleAge <= 0:
		return errors.New("torture: StaleAge must be positive")
	}
	return nil
}

// FromEnv applies the NFSIMAP_TORTURE_* environment variables to c.
func (c Config) FromEnv() (Config, error) {
	if v := os.Getenv(EnvDuration); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("torture: %s: %w", EnvDuration, err)
		}
		c.Duration = d
	}
	if v := os.Getenv(EnvWriters); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("torture: %s: %w", EnvWriters, err)
		}
		c.Writers = n
	}
	if v := os.Getenv(EnvSeed); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return c, fmt.Errorf("torture: %s: %w", EnvSeed, err)
		}
		c.Seed = n
	}
	return c, c.Validate()
}
