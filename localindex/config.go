package localindex

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Config configures an Index. Start from DefaultConfig.
type Config struct {
	// Dir is the root directory of the index on local disk. It is created
	// when missing. Required. Everything below it may be deleted at any
	// moment (by an operator, by eviction); the index then rebuilds.
	Dir string

	// Budget is the most bytes the index may use on disk. When Evict finds
	// more, it removes whole user directories, coldest (least recently
	// used) first, until the usage is at most Budget*EvictTarget. 0 means
	// no budget (Evict does nothing).
	Budget int64

	// EvictTarget is the fraction of Budget that eviction brings the usage
	// down to, so that it does not run again at once. 0 means 0.9.
	EvictTarget float64

	// EvictInterval is how often Run calls Evict. 0 means one minute.
	EvictInterval time.Duration

	// TouchInterval is how often Touch rewrites a user's last-use stamp file
	// on disk (the time in memory is always current). 0 means one minute.
	TouchInterval time.Duration

	// Fsync makes every write fsync the file before renaming it into place.
	// The index is disposable and a torn write is caught by its checksum,
	// so the zero value (off) is the normal setting.
	Fsync bool

	// CompactBytes is the size of a mailbox's change log above which Save
	// writes a full index file instead of appending (and drops the log).
	// The log is also compacted when it grows past the size of the index
	// file itself. 0 means 4 MiB.
	CompactBytes int64

	// DegradedRetry is how long after a failed write (full disk, I/O error)
	// the index skips writes and answers ErrDegraded at once, so that a
	// sick disk costs no time per command. 0 means 10 seconds.
	DegradedRetry time.Duration

	// DirMode and FileMode are the permissions of created directories and
	// files. 0 means 0700 and 0600.
	DirMode, FileMode os.FileMode

	// Now is the clock (tests may fix it). nil means time.Now.
	Now func() time.Time
}

// DefaultConfig returns the configuration for a production node, without
// Dir (which the caller must set).
func DefaultConfig() Config {
	return Config{
		EvictTarget:   0.9,
		EvictInterval: time.Minute,
		TouchInterval: time.Minute,
		CompactBytes:  4 << 20,
		DegradedRetry: 10 * time.Second,
		DirMode:       0o700,
		FileMode:      0o600,
	}
}

// Validate reports an unusable setting.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("localindex: Dir is required")
	case c.Budget < 0:
		return fmt.Errorf("localindex: negative Budget %d", c.Budget)
	case c.EvictTarget < 0 || c.EvictTarget > 1:
		return fmt.Errorf("localindex: EvictTarget %v not in [0,1]", c.EvictTarget)
	case c.EvictInterval < 0, c.TouchInterval < 0, c.DegradedRetry < 0:
		return errors.New("localindex: negative interval")
	case c.CompactBytes < 0:
		return fmt.Errorf("localindex: negative CompactBytes %d", c.CompactBytes)
	}
	return nil
}

// withDefaults fills the zero values that mean "default".
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.EvictTarget == 0 {
		c.EvictTarget = d.EvictTarget
	}
	if c.EvictInterval == 0 {
		c.EvictInterval = d.EvictInterval
	}
	if c.TouchInterval == 0 {
		c.TouchInterval = d.TouchInterval
	}
	if c.CompactBytes == 0 {
		c.CompactBytes = d.CompactBytes
	}
	if c.DegradedRetry == 0 {
		c.DegradedRetry = d.DegradedRetry
	}
	if c.DirMode == 0 {
		c.DirMode = d.DirMode
	}
	if c.FileMode == 0 {
		c.FileMode = d.FileMode
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
