package maildir

import "errors"

// Errors returned (wrapped) by this package. Test them with errors.Is.
var (
	// ErrInvalidName: a user, mailbox or file name that is not allowed,
	// for example one that could escape the spool ("..", "/", NUL, an
	// absolute path, an empty hierarchy level).
	ErrInvalidName = errors.New("maildir: invalid name")
	// ErrNoMailbox: the mailbox does not exist (or is not selectable).
	ErrNoMailbox = errors.New("maildir: no such mailbox")
	// ErrMailboxExists: Create or Rename to a name that already exists.
	ErrMailboxExists = errors.New("maildir: mailbox already exists")
	// ErrNotAllowed: an operation refused by the rules of the store, such
	// as deleting INBOX or renaming a mailbox into its own child.
	ErrNotAllowed = errors.New("maildir: operation not allowed")
	// ErrNoMessage: no message has this UID any more (it was expunged, here
	// or by another node).
	ErrNoMessage = errors.New("maildir: no such message")
	// ErrTooManyKeywords: the mailbox already uses all 26 keyword letters.
	ErrTooManyKeywords = errors.New("maildir: too many keywords")
	// ErrCorrupt: a spool file (uidlist, keywords) could not be parsed. A
	// corrupt uidlist is logged and rebuilt by Sync; callers see ErrCorrupt
	// only from the exported parsers.
	ErrCorrupt = errors.New("maildir: corrupt file")
	// ErrRetriesExhausted: the spool kept changing (ENOENT) or kept failing
	// with ESTALE through all retries. The cause is wrapped too.
	ErrRetriesExhausted = errors.New("maildir: spool kept changing, retries exhausted")
	// ErrNotImplemented: a part not written yet.
	ErrNotImplemented = errors.New("maildir: not implemented")
)
