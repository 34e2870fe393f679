package session

import (
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/nfsimap/nfsimap/localindex"
	"github.com/nfsimap/nfsimap/node/maildir"
)

// Config configures the sessions of a node. Start from DefaultConfig.
type Config struct {
	// Layout says where users' maildirs are (INBOX and folder root
	// templates). A user's own mail location (auth.User.Mail) overrides it.
	Layout maildir.Layout

	// Maildir configures spool access (dot-locks, fsync, retries).
	// Maildir.Logger nil means the factory's logger.
	Maildir maildir.Options

	// PollInterval is how often a mailbox that some session has selected is
	// checked for changes made by other nodes or by MTAs (new mail in new/,
	// flags, expunges). Zero means the default, 10 s.
	PollInterval time.Duration

	// MinSyncInterval: a command's implicit update check (go-imap's Poll,
	// after most commands) reads the spool only when the mailbox was last
	// read longer ago than this; otherwise it only reports what this node
	// already knows (changes made by other sessions of this node are always
	// reported at once). Zero means the default, 1 s; a negative value
	// checks the spool after every command.
	MinSyncInterval time.Duration

	// SpecialUse maps folder names to their RFC 6154 attribute (\Sent,
	// \Drafts, \Trash, \Junk, \Archive, \All, \Flagged), for LIST. nil means
	// none.
	SpecialUse map[string]imap.MailboxAttr

	// AppendLimit is the largest message APPEND accepts, in bytes
	// (advertised as APPENDLIMIT=). Zero means the default, 50 MiB.
	AppendLimit uint32

	// SpoolTimeout bounds one command's spool work. Zero means the
	// default, 2 minutes.
	SpoolTimeout time.Duration

	// Index is the node's local index on its own disk (opened by the
	// caller, who also runs its eviction). It answers STATUS of unchanged
	// mailboxes, SELECT of unchanged mailboxes and FETCH of sizes, dates,
	// ENVELOPE and BODYSTRUCTURE without spool reads, also across
	// sessions and restarts. nil means none: parsed messages are kept in
	// memory while a mailbox is selected, and STATUS answers in a bounded
	// in-memory cache.
	Index *localindex.Index
}

// DefaultConfig returns the configuration for a production node with
// classic Maildir++ in ~/Maildir.
func DefaultConfig() Config {
	return Config{
		Layout:          maildir.DefaultLayout(),
		Maildir:         maildir.DefaultOptions(),
		PollInterval:    10 * time.Second,
		MinSyncInterval: time.Second,
		AppendLimit:     50 << 20,
		SpoolTimeout:    2 * time.Minute,
	}
}

var specialUseAttrs = map[imap.MailboxAttr]bool{
	imap.MailboxAttrSent: true, imap.MailboxAttrDrafts: true, imap.MailboxAttrTrash: true,
	imap.MailboxAttrJunk: true, imap.MailboxAttrArchive: true, imap.MailboxAttrAll: true,
	imap.MailboxAttrFlagged: true,
}

// Validate reports an unusable setting.
func (c Config) Validate() error {
	if err := c.Layout.Validate(); err != nil {
		return fmt.Errorf("session: %w", err)
	}
	if err := c.Maildir.Validate(); err != nil {
		return fmt.Errorf("session: %w", err)
	}
	if c.PollInterval < 0 {
		return fmt.Errorf("session: negative PollInterval")
	}
	if c.SpoolTimeout < 0 {
		return fmt.Errorf("session: negative SpoolTimeout")
	}
	for name, attr := range c.SpecialUse {
		if name == "" || strings.EqualFold(name, "INBOX") {
			return fmt.Errorf("session: special-use folder name %q not allowed", name)
		}
		if !specialUseAttrs[imap.MailboxAttr(canonicalAttr(attr))] {
			return fmt.Errorf("session: special-use attribute %q of %q is not one of RFC 6154's", attr, name)
		}
	}
	return nil
}

// canonicalAttr writes an attribute as RFC 6154 spells it ("\sent" ->
// "\Sent").
func canonicalAttr(a imap.MailboxAttr) imap.MailboxAttr {
	s := strings.TrimPrefix(string(a), "\\")
	if s == "" {
		return a
	}
	return imap.MailboxAttr("\\" + strings.ToUpper(s[:1]) + strings.ToLower(s[1:]))
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.PollInterval == 0 {
		c.PollInterval = d.PollInterval
	}
	if c.MinSyncInterval == 0 {
		c.MinSyncInterval = d.MinSyncInterval
	}
	if c.AppendLimit == 0 {
		c.AppendLimit = d.AppendLimit
	}
	if c.SpoolTimeout == 0 {
		c.SpoolTimeout = d.SpoolTimeout
	}
	su := make(map[string]imap.MailboxAttr, len(c.SpecialUse))
	for k, v := range c.SpecialUse {
		su[k] = canonicalAttr(v)
	}
	c.SpecialUse = su
	return c
}
