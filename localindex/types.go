package localindex

import (
	"errors"
	"slices"
	"strings"
	"time"
)

// Errors returned by loads (test with errors.Is). Callers treat both the
// same way: rebuild from the spool.
var (
	// ErrNotFound: there is no index file for this user and mailbox.
	ErrNotFound = errors.New("localindex: not found")
	// ErrCorrupt: the file was partial, damaged, of another format version
	// or of another user or mailbox. It has been removed.
	ErrCorrupt = errors.New("localindex: corrupt index file")
	// ErrDegraded: a recent write failed (full disk, I/O error) and writes
	// are skipped for Config.DegradedRetry. Serve from the spool.
	ErrDegraded = errors.New("localindex: index writes suspended after a disk error")
	// ErrClosed: the Mailbox was closed.
	ErrClosed = errors.New("localindex: mailbox index closed")
)

// SpoolState is the state of a maildir on the spool that an index was built
// from: change times (nanoseconds since the epoch), sizes and inode numbers
// of new/, cur/ and the uidlist file. The caller fills it from stats of the
// spool; fields it cannot know stay zero (and then must be zero every time).
//
// The zero SpoolState means "unknown" and never equals anything, itself
// included.
type SpoolState struct {
	NewMtime, CurMtime, UidlistMtime int64
	NewSize, CurSize, UidlistSize    int64
	NewIno, CurIno, UidlistIno       uint64
}

// TimeNano converts a change time for a SpoolState: nanoseconds since the
// epoch, and 0 for the zero time (a file that was not there).
func TimeNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// IsZero reports whether the state is unknown.
func (s SpoolState) IsZero() bool { return s == SpoolState{} }

// Equal reports whether two states are the same known state. An equal state
// means the spool looks unchanged; on NFS the caller must have revalidated
// the attributes it took (DESIGN rule 5) before acting on that.
func (s SpoolState) Equal(o SpoolState) bool { return !s.IsZero() && s == o }

// Flags are the IMAP system flags of a message, as bits. The index reads only
// FlagSeen (for UNSEEN) and FlagDeleted (for DELETED); the bits from FlagUser up are the caller's own.
type Flags uint32

// The system flags.
const (
	FlagSeen Flags = 1 << iota
	FlagAnswered
	FlagFlagged
	FlagDeleted
	FlagDraft
	FlagUser Flags = 1 << 16 // first bit the index leaves to the caller
)

// Headers are the raw header field values SEARCH, SORT and THREAD need, as
// in the message (unfolded, RFC 2047 still encoded): each the first field of
// its name, "" when absent.
type Headers struct {
	Date, Subject, From, To, Cc, MessageID, InReplyTo, References string
	Bcc                                                           string
	// Present has the bit of each field above that the message has, an
	// empty one included, and HeadersComplete when Present and More were
	// filled in. A Headers without HeadersComplete tells only the first
	// values, "" for both an empty and a missing field.
	Present HeaderSet
	// More holds the second and later fields of the names above that occur
	// more than once, in message order; nil when none does.
	More []HeaderField
}

// HeaderField is one header field: its name in canonical form ("Subject",
// "Message-Id") and its raw value.
type HeaderField struct {
	Name, Value string
}

// HeaderSet is a set of the fields Headers holds, one bit each.
type HeaderSet uint16

// The fields of Headers.
const (
	HeaderDate HeaderSet = 1 << iota
	HeaderSubject
	HeaderFrom
	HeaderTo
	HeaderCc
	HeaderBcc
	HeaderMessageID
	HeaderInReplyTo
	HeaderReferences
	// HeadersComplete says Present and More were filled in.
	HeadersComplete HeaderSet = 1 << 15
)

// Equal reports whether two Headers hold the same fields.
func (h *Headers) Equal(o *Headers) bool {
	return h.Date == o.Date && h.Subject == o.Subject && h.From == o.From && h.To == o.To &&
		h.Cc == o.Cc && h.MessageID == o.MessageID && h.InReplyTo == o.InReplyTo &&
		h.References == o.References && h.Bcc == o.Bcc && h.Present == o.Present &&
		slices.Equal(h.More, o.More)
}

// Record is what the index keeps about one message.
//
// Records returned by a Mailbox share memory with the index: the caller
// must not change their byte slices, keyword slices or Header.More.
type Record struct {
	UID uint32
	// File is the message's current file name (unique part plus info),
	// without the directory.
	File string
	// InNew is true when the file is in new/ rather than cur/.
	InNew bool
	// Flags are the system flags and the caller's own bits.
	Flags Flags
	// Keywords are the message's keyword names.
	Keywords []string

	// Parsed is true when the fields below were filled from the message
	// (the caller read it). A record with Parsed false only knows the UID,
	// the file and the flags.
	Parsed bool
	// Size is the RFC822 size (with CRLF line ends); PhysicalSize the
	// file's size on the spool.
	Size, PhysicalSize int64
	// InternalDate is the IMAP internal date (the file's mtime).
	InternalDate time.Time
	// Envelope and BodyStructure are the caller's serialised ENVELOPE and
	// BODYSTRUCTURE, opaque to the index. nil when not cached.
	Envelope, BodyStructure []byte
	// Header holds the header fields for SEARCH, SORT and THREAD.
	Header Headers
}

// Unique returns the unique part of the file name (before the first ':'),
// which never changes for the life of the message.
func (r *Record) Unique() string { return uniquePart(r.File) }

func uniquePart(file string) string {
	if i := strings.IndexByte(file, ':'); i >= 0 {
		return file[:i]
	}
	return file
}

// Summary is what STATUS needs about a mailbox, with the spool state it was
// taken from.
type Summary struct {
	// Spool is the spool state the numbers describe.
	Spool                SpoolState
	UIDValidity, UIDNext uint32
	Messages, Unseen     uint32
	Recent               uint32
	// Size is the sum of the messages' RFC822 sizes (STATUS SIZE), or -1
	// when some message was never parsed.
	Size int64
	// Deleted counts the messages flagged \Deleted (STATUS DELETED).
	Deleted uint32
	// DeletedSize is the sum of the RFC822 sizes of the \Deleted messages
	// (STATUS DELETED-STORAGE), or -1 when Size is.
	DeletedSize int64
	// Updated is when the summary was written (set by StoreSummary).
	Updated time.Time
}

// Stats are the index's counters since Open.
type Stats struct {
	// SummaryHits and SummaryMisses count LoadSummary results (a miss is
	// not-found or corrupt); MailboxHits and MailboxMisses LoadMailbox's.
	SummaryHits, SummaryMisses int64
	MailboxHits, MailboxMisses int64
	// Corrupt counts files found corrupt, partial or foreign (and removed),
	// torn log tails included.
	Corrupt int64
	// Writes counts files and log entries written; BytesWritten their size.
	Writes, BytesWritten int64
	// LogAppends counts changes appended to a log; Compactions full index
	// files written by Save.
	LogAppends, Compactions int64
	// WriteErrors counts failed writes (full disk, I/O errors); Skipped the
	// writes not tried because the index was degraded.
	WriteErrors, Skipped int64
	// Degraded is true while writes are suspended after an error.
	Degraded bool
	// EvictedUsers and EvictedBytes count what eviction removed; EvictRuns
	// how many times Evict scanned the disk.
	EvictedUsers, EvictedBytes, EvictRuns int64
}
