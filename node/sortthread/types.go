package sortthread

import (
	"errors"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Errors returned by the parsers. Test them with errors.Is.
var (
	// ErrSyntax reports a malformed SORT or THREAD command: answer BAD.
	ErrSyntax = errors.New("sortthread: syntax error")
	// ErrBadCharset reports a charset this server cannot decode: answer
	// NO [BADCHARSET (UTF-8 US-ASCII)].
	ErrBadCharset = errors.New("sortthread: unsupported charset")
	// ErrUnknownAlgorithm reports a THREAD algorithm this package does not
	// implement: answer BAD.
	ErrUnknownAlgorithm = errors.New("sortthread: unknown threading algorithm")
)

// SortCriterion names one SORT key (RFC 5256 section 3, RFC 5957).
type SortCriterion string

// The sort criteria.
const (
	SortArrival     SortCriterion = "ARRIVAL"
	SortCc          SortCriterion = "CC"
	SortDate        SortCriterion = "DATE"
	SortFrom        SortCriterion = "FROM"
	SortSize        SortCriterion = "SIZE"
	SortSubject     SortCriterion = "SUBJECT"
	SortTo          SortCriterion = "TO"
	SortDisplayFrom SortCriterion = "DISPLAYFROM"
	SortDisplayTo   SortCriterion = "DISPLAYTO"
)

// SortKey is one key of a sort program.
type SortKey struct {
	Criterion SortCriterion
	Reverse   bool // the key was preceded by REVERSE
}

// String returns the key as written in a SORT command ("REVERSE DATE").
func (k SortKey) String() string {
	if k.Reverse {
		return "REVERSE " + string(k.Criterion)
	}
	return string(k.Criterion)
}

// Threading algorithms accepted by Thread and ParseThread.
const (
	AlgorithmOrderedSubject = "ORDEREDSUBJECT"
	AlgorithmReferences     = "REFERENCES"
)

// ESORT return options (RFC 5267) accepted in SORT RETURN (...).
const (
	ReturnMin   = "MIN"
	ReturnMax   = "MAX"
	ReturnAll   = "ALL"
	ReturnCount = "COUNT"
)

// SortCommand is a parsed SORT command.
type SortCommand struct {
	// Return holds the ESORT RETURN options, upper-cased, without
	// duplicates, in the order given; nil when the command has no RETURN.
	// "RETURN ()" is returned as []string{"ALL"} (RFC 4731).
	Return []string
	// Keys is the sort program, at least one key.
	Keys []SortKey
	// Charset is the charset name as the client wrote it. The search
	// strings in Criteria are already decoded from it to UTF-8.
	Charset string
	// Criteria selects the messages to sort.
	Criteria *imap.SearchCriteria
}

// ThreadCommand is a parsed THREAD command.
type ThreadCommand struct {
	// Algorithm is upper-cased: ORDEREDSUBJECT or REFERENCES.
	Algorithm string
	// Charset is the charset name as the client wrote it.
	Charset string
	// Criteria selects the messages to thread.
	Criteria *imap.SearchCriteria
}

// Message holds what SORT and THREAD need to know about one message. The
// header fields are the raw (unfolded or folded) values as they appear in
// the message, RFC 2047 encoded words still encoded; an absent header is "".
// For a header that occurs more than once, give the first (as Dovecot
// does); ParseHeader fills them from a raw header. SeqNum must be non-zero
// (0 marks dummies in a thread tree); SeqNum and UID must be unique.
type Message struct {
	SeqNum       uint32
	UID          uint32
	Size         int64     // RFC822.SIZE
	InternalDate time.Time // the arrival time

	Date       string
	Subject    string
	From       string
	To         string
	Cc         string
	MessageID  string
	InReplyTo  string
	References string
}

// Node is one node of a thread tree. A node with SeqNum 0 is a dummy: it
// stands for a message that is referenced but not in the result, and only
// groups its children. Thread returns dummies only at the top level, with
// at least two children.
type Node struct {
	SeqNum   uint32
	UID      uint32
	Children []*Node
}

// Dummy reports whether n stands for no message.
func (n *Node) Dummy() bool { return n.SeqNum == 0 }
