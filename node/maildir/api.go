package maildir

import "time"

// Separator is the IMAP hierarchy separator of Maildir++ folders.
const Separator = '.'

// MailboxInfo describes one name in the mailbox hierarchy.
type MailboxInfo struct {
	// Name is the IMAP name, "INBOX" or a folder name such as
	// "Archive.2024", stored as given at Create (modified UTF-7 is the IMAP
	// layer's concern).
	Name string
	// NoSelect is true for a name that only exists because it has children
	// (its own folder was deleted or never created): \Noselect.
	NoSelect bool
	// HasChildren is true when a folder exists below this name.
	HasChildren bool
}

// Message is one message as seen by the last Sync.
type Message struct {
	UID uint32
	// File is the current file name (in cur/, or in new/ when InNew).
	File string
	// InNew is true when the file was in new/ (not yet seen by any IMAP
	// client: a candidate for \Recent).
	InNew bool
	// Name is File parsed.
	Name Name
	// Flags are the standard flags from the name (none for new/).
	Flags Flags
	// Keywords are the keyword names the name's letters map to through
	// dovecot-keywords, in letter order. Letters without a name are not
	// listed (but kept in the file name).
	Keywords []string
}

// Snapshot is the state of a mailbox after a Sync. It is never changed
// after it is returned: the caller may keep it and share it between
// goroutines.
type Snapshot struct {
	UIDValidity uint32
	// UIDNext is the UID the next new message will get.
	UIDNext uint32
	// Messages are sorted by ascending UID.
	Messages []Message
	// Keywords are the mailbox's keyword names by index ("" = unused).
	Keywords []string
	// MovedFromNew lists the UIDs this Sync moved from new/ to cur/ (with
	// SyncOptions.MoveNew): the messages this session may call \Recent.
	MovedFromNew []uint32
	// Stamp is the mailbox's change stamp taken before the Sync read the
	// spool: if a later Mailbox.Stamp equals it, nothing visible changed.
	// It is the zero Stamp when the Sync could not take the uidlist lock
	// (held too long by someone else): files without a UID were left out
	// and a later Sync must look again.
	Stamp Stamp
}

// Lookup finds a message by UID in the snapshot (binary search).
func (s *Snapshot) Lookup(uid uint32) (Message, bool) {
	lo, hi := 0, len(s.Messages)
	for lo < hi {
		mid := (lo + hi) / 2
		if s.Messages[mid].UID < uid {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(s.Messages) && s.Messages[lo].UID == uid {
		return s.Messages[lo], true
	}
	return Message{}, false
}

// Stamp identifies the state of a maildir cheaply: the change times and
// sizes of new/, cur/ and dovecot-uidlist, and the uidlist's inode. Two
// equal Stamps taken with revalidated attributes mean no message was added,
// removed, renamed (flags) and no UID was assigned.
type Stamp struct {
	NewMtime, CurMtime, UidlistMtime time.Time
	UidlistSize                      int64
	UidlistIno                       uint64
}

// SyncOptions change what Sync does.
type SyncOptions struct {
	// MoveNew renames the files in new/ to cur/ (adding ":2,"), as a
	// read-write SELECT does. Their UIDs are reported in
	// Snapshot.MovedFromNew.
	MoveNew bool
	// IfChanged returns the handle's last snapshot without listing the
	// maildir when its Stamp is unchanged and new/ and cur/ were last
	// changed more than two seconds ago (so a change within the same
	// second of a coarse mtime cannot hide). On NFS the stamp comes from
	// cached attributes: new mail may show a few seconds late, never
	// wrongly. The returned snapshot's MovedFromNew is empty.
	IfChanged bool
}

// AppendOptions are the metadata of an appended message.
type AppendOptions struct {
	Flags Flags
	// Keywords are keyword names; new ones get a letter in
	// dovecot-keywords (ErrTooManyKeywords beyond 26).
	Keywords []string
	// Date is the internal date, stored as the file's mtime; zero = now.
	Date time.Time
}

// FlagOp says how Store changes flags.
type FlagOp int

// The flag operations of IMAP STORE.
const (
	FlagsSet    FlagOp = iota // FLAGS: replace
	FlagsAdd                  // +FLAGS
	FlagsRemove               // -FLAGS
)

// CopyResult pairs a source UID with the UID of its copy.
type CopyResult struct {
	SrcUID, DstUID uint32
}
