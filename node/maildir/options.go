package maildir

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/nfsimap/nfsimap/nfslock"
)

// Options configure a Store. Start from DefaultOptions.
type Options struct {
	// Lock configures the dot-locks taken on the uidlist, keywords and
	// subscriptions files. Lock.Logger is replaced by Logger when nil.
	Lock nfslock.Options

	// NoFsync turns off fsync of messages, control files and directories.
	// Only for tests on throw-away directories; the zero value (fsync on)
	// is the only safe setting for a spool.
	NoFsync bool

	// Host names this node inside new file names (unique parts). "" means
	// os.Hostname(). '/' and ':' are written as \057 and \072.
	Host string

	// Logger receives warnings about odd spool contents (corrupt uidlist,
	// duplicate files) and retries. nil discards.
	Logger *slog.Logger

	// StaleRetries is how many times an operation that failed with ESTALE
	// is tried again. 0 means the default, 3.
	StaleRetries int

	// RaceRetries is how many times an operation that lost a race (ENOENT
	// on a message another node renamed or removed) rescans the maildir and
	// tries again before it gives up with ErrRetriesExhausted. 0 means the
	// default, 10.
	RaceRetries int

	// ExpungeGrace is how long a message file must have been missing from
	// the directory listings a Mailbox saw (or unlinked by it) before its
	// record is dropped from dovecot-uidlist, at the next rewrite after
	// that. NFS listings are cached: a file renamed by another node can be
	// missing from one for a moment (dropping its record would give the
	// message a new UID), and an expunged file can still show in another
	// node's listing (with its record gone, that node would give the ghost
	// a new UID). 0 means drop at the next rewrite (only safe on a local
	// disk). DefaultOptions sets 1 minute.
	ExpungeGrace time.Duration

	// DirMode and FileMode are the permissions of created directories and
	// files. 0 means 0700 and 0600.
	DirMode, FileMode os.FileMode

	// Now is the clock (tests may fix it). nil means time.Now.
	Now func() time.Time

	// Listings tracks the directory listings that a filer's whole-second
	// mtimes may leave stale in the NFS client's cache, and flushes that
	// cache when needed (see ListingGuard). All Stores of a node should
	// share one: they see one client cache. DefaultOptions makes one, and
	// copies of an Options value share it; nil gives each Store its own.
	Listings *ListingGuard

	// OnOp, when set, is told of each operation on the spool by its name,
	// one of the Op constants (for metrics: node/httpapi counts them by
	// name). It is called synchronously, often with a Mailbox's mutex
	// held: it must be quick, must not block and must not call the Store.
	OnOp func(op string)
}

// Operation names given to Options.OnOp. Each is counted once when it
// succeeded; retries after ESTALE or a lost race are not counted apart.
const (
	// OpSync is a sync that listed the maildir (new/ and cur/).
	OpSync = "sync"
	// OpSyncUnchanged is a sync answered from the last snapshot because
	// the maildir's stamp was unchanged (SyncOptions.IfChanged).
	OpSyncUnchanged = "sync_unchanged"
	// OpRead is a message file opened for reading (Open, ReadAll, Sizes).
	OpRead = "read"
	// OpRename is a message file renamed: a flag change (Store), a move
	// from new/ to cur/, or a duplicate unique part renamed apart.
	OpRename = "rename"
	// OpAppend is a message stored by Append; OpDeliver one stored by
	// Deliver.
	OpAppend  = "append"
	OpDeliver = "deliver"
	// OpCopy is a message copied to another mailbox (Copy, Move).
	OpCopy = "copy"
	// OpExpunge is a message file unlinked (Expunge, Move).
	OpExpunge = "expunge"
	// OpControlWrite is a control file written (dovecot-uidlist,
	// dovecot-keywords, subscriptions, the UIDVALIDITY hint).
	OpControlWrite = "control_write"
	// OpListingFlush is a marker created and removed in new/ or cur/ to
	// make the NFS client drop a cached listing that whole-second mtimes
	// may have left stale (see ListingGuard).
	OpListingFlush = "listing_flush"
)

// DefaultOptions returns the options for a production spool.
func DefaultOptions() Options {
	return Options{
		Lock:         nfslock.DefaultOptions(),
		StaleRetries: 3,
		RaceRetries:  10,
		ExpungeGrace: time.Minute,
		Listings:     NewListingGuard(),
		DirMode:      0o700,
		FileMode:     0o600,
	}
}

// Validate reports an unusable setting.
func (o Options) Validate() error {
	if err := o.Lock.Validate(); err != nil {
		return fmt.Errorf("maildir: lock options: %w", err)
	}
	if o.StaleRetries < 0 || o.RaceRetries < 0 {
		return fmt.Errorf("maildir: negative retry count")
	}
	if o.ExpungeGrace < 0 {
		return fmt.Errorf("maildir: negative ExpungeGrace")
	}
	if o.DirMode&^os.ModePerm != 0 || o.FileMode&^os.ModePerm != 0 {
		return fmt.Errorf("maildir: DirMode and FileMode take permission bits only")
	}
	return nil
}

// withDefaults fills in the zero values that mean a default.
func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Lock.Logger == nil {
		o.Lock.Logger = o.Logger
	}
	if o.StaleRetries == 0 {
		o.StaleRetries = 3
	}
	if o.RaceRetries == 0 {
		o.RaceRetries = 10
	}
	if o.DirMode == 0 {
		o.DirMode = 0o700
	}
	if o.FileMode == 0 {
		o.FileMode = 0o600
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Listings == nil {
		o.Listings = NewListingGuard()
	}
	if o.Host == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		o.Host = h
	}
	return o
}
