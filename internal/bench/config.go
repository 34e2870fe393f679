package bench

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is one comparison's size. QuickConfig and FullConfig are the two
// the Makefile runs.
type Config struct {
	// Mode names the config in the report ("quick", "full").
	Mode string
	// Seed makes the spool and loadtest's clients repeatable.
	Seed int64

	// Users user1..userN, each with Messages messages over INBOX and
	// Folders; they serve loadtest, the login and the idle measurements.
	Users    int
	Messages int
	Folders  []string
	// ProbeMessages is the size of the probe user's spool (INBOX and
	// Folders) whose spool operations are counted.
	ProbeMessages int
	// BigMessages is the size of the big user's INBOX for SORT/THREAD.
	BigMessages int
	// MaxAttachment caps attachment sizes (corpus.Options.MaxAttachment).
	MaxAttachment int

	// LoadDuration is the length of each server's loadtest run; LoadMix is
	// loadtest's -mix.
	LoadDuration time.Duration
	LoadMix      string

	// LoginDuration and LoginWorkers size the logins-per-second run.
	LoginDuration time.Duration
	LoginWorkers  int

	// IdleConns connections in IDLE on INBOX are opened by IdleWorkers
	// goroutines, from SourceAddrs loopback addresses.
	IdleConns   int
	IdleWorkers int
	SourceAddrs int
	// MinAvailableMiB stops opening idle connections when the machine's
	// available memory falls below it; the report says where it stopped.
	MinAvailableMiB int64

	// SpoolRepeat is how often each command of the spool-operation count
	// runs; SortRuns how often each SORT/THREAD command runs.
	SpoolRepeat int
	SortRuns    int

	// PollInterval is nfsimap's poll_interval (its production default;
	// Dovecot learns of changes through inotify).
	PollInterval time.Duration
}

// QuickConfig is `make bench-quick`: a few minutes, for development.
func QuickConfig() Config {
	return Config{
		Mode:            "quick",
		Seed:            1,
		Users:           20,
		Messages:        200,
		Folders:         []string{"Sent", "Drafts", "Trash", "Archive.2024", "Lists.golang"},
		ProbeMessages:   300,
		BigMessages:     2000,
		MaxAttachment:   256 << 10,
		LoadDuration:    20 * time.Second,
		LoadMix:         "webmail=4,idle=2,desktop2=1,mobile=2,heavy=1",
		LoginDuration:   5 * time.Second,
		LoginWorkers:    8,
		IdleConns:       1000,
		IdleWorkers:     16,
		SourceAddrs:     16,
		MinAvailableMiB: 3072,
		SpoolRepeat:     100,
		SortRuns:        5,
		PollInterval:    10 * time.Second,
	}
}

// FullConfig is `make bench`: the numbers for the README, under 10
// minutes on a 2-core machine.
func FullConfig() Config {
	c := QuickConfig()
	c.Mode = "full"
	c.Users = 200
	c.Messages = 500
	c.BigMessages = 10000
	c.MaxAttachment = 128 << 10
	c.LoadDuration = 90 * time.Second
	c.LoginDuration = 15 * time.Second
	c.IdleConns = 10000
	c.IdleWorkers = 32
	c.SortRuns = 7
	return c
}

// ConfigFor returns the config of a mode name.
func ConfigFor(mode string) (Config, error) {
	switch strings.ToLower(strings.TrimSpace(mode)) {
	case "quick":
		return QuickConfig(), nil
	case "full":
		return FullConfig(), nil
	}
	return Config{}, fmt.Errorf("bench mode %q: want quick or full", mode)
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	var errs []error
	if c.Users < 1 || c.Messages < 1 {
		errs = append(errs, errors.New("users and messages must be at least 1"))
	}
	if c.ProbeMessages < 1 || len(c.Folders) == 0 {
		errs = append(errs, errors.New("the probe user needs messages and a folder"))
	}
	if c.BigMessages < 0 || c.MaxAttachment < 0 {
		errs = append(errs, errors.New("negative big mailbox or attachment size"))
	}
	if c.LoadDuration <= 0 || c.LoginDuration <= 0 || c.LoadMix == "" {
		errs = append(errs, errors.New("loadtest and login runs need a duration and a mix"))
	}
	if c.LoginWorkers < 1 || c.IdleWorkers < 1 || c.SourceAddrs < 1 || c.SourceAddrs > 250 {
		errs = append(errs, errors.New("workers must be at least 1; source addresses 1 to 250"))
	}
	if c.IdleConns < 0 || c.SpoolRepeat < 1 || c.SortRuns < 2 {
		errs = append(errs, errors.New("idle conns must not be negative, spool repeat at least 1, sort runs at least 2"))
	}
	if c.PollInterval <= 0 {
		errs = append(errs, errors.New("poll interval must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench config: %w", err)
	}
	return nil
}
