package torture

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Operations recorded in journals.
const (
	OpDeliver = "deliver" // Append of a new message (ID, Mailbox, Flags; done: UID)
	OpFlag    = "flag"    // Store FLAGS of one message (Mailbox, UID, ID, Flags)
	OpSync    = "sync"    // Sync with MoveNew (Mailbox; done: UIDValidity)
	OpCopy    = "copy"    // Copy one message (Mailbox, UID, ID, Dst, Flags; done: DstUID)
	OpExpunge = "expunge" // Store +\Deleted then Expunge of one message (Mailbox, UID, ID)
	OpMTA     = "mta"     // MTA delivery into new/ (Mailbox, ID, File)
	OpAdopt   = "adopt"   // a writer session takes over an MTA message (Mailbox, UID, ID, Flags)
	OpAnomaly = "anomaly" // something a writer saw that must not happen (Note)
)

// Phases of a journal record.
const (
	PhaseBegin = "begin" // written before the spool operation starts
	PhaseDone  = "done"  // written after it returned without error
	PhaseFail  = "fail"  // written after it returned an error (it may have happened or not)
)

// Record is one journal line.
type Record struct {
	Seq         int64  `json:"seq"`
	Time        int64  `json:"t,omitempty"` // UnixNano when written, for post-mortems
	Phase       string `json:"phase"`
	Op          string `json:"op"`
	Mailbox     string `json:"mbox,omitempty"`
	UID         uint32 `json:"uid,omitempty"`
	ID          string `json:"id,omitempty"`
	Flags       string `json:"flags,omitempty"` // canonical flag state, see flagState
	Dst         string `json:"dst,omitempty"`
	DstUID      uint32 `json:"dstuid,omitempty"`
	UIDValidity uint32 `json:"uidvalidity,omitempty"`
	File        string `json:"file,omitempty"`
	Err         string `json:"err,omitempty"`
	Note        string `json:"note,omitempty"`
}

// Journal appends records to a file, each fsynced before Write returns.
// It is used by one goroutine.
type Journal struct {
	f   *os.File
	seq int64
}

// CreateJournal creates (or truncates) the journal file.
func CreateJournal(path string) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("torture: journal: %w", err)
	}
	return &Journal{f: f}, nil
}

// Write appends r (with the next sequence number) and fsyncs.
func (j *Journal) Write(r Record) error {
	j.seq++
	r.Seq = j.seq
	r.Time = time.Now().UnixNano()
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("torture: journal: %w", err)
	}
	b = append(b, '\n')
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("torture: journal write: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("torture: journal fsync: %w", err)
	}
	return nil
}

// Close closes the file.
func (j *Journal) Close() error {
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("torture: journal close: %w", err)
	}
	return nil
}

// ErrBadJournal is returned (wrapped) for a journal line that does not
// parse other than a torn last line.
var ErrBadJournal = errors.New("torture: bad journal")

// ParseJournal reads journal lines. A last line without its newline (torn
// by a SIGKILL during the write) is ignored; any other bad line is an
// error. Sequence numbers must count up from 1.
func ParseJournal(r io.Reader) ([]Record, error) {
	br := bufio.NewReader(r)
	var out []Record
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			// A torn last line (no newline) is what a kill mid-write leaves.
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("torture: reading journal: %w", err)
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil {
			return out, fmt.Errorf("%w: line %d: %w", ErrBadJournal, len(out)+1, err)
		}
		if rec.Seq != int64(len(out)+1) {
			return out, fmt.Errorf("%w: line %d has sequence number %d", ErrBadJournal, len(out)+1, rec.Seq)
		}
		switch rec.Phase {
		case PhaseBegin, PhaseDone, PhaseFail:
		default:
			return out, fmt.Errorf("%w: line %d: phase %q", ErrBadJournal, len(out)+1, rec.Phase)
		}
		out = append(out, rec)
	}
}

// ReadJournalFile parses the journal at path.
func ReadJournalFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("torture: %w", err)
	}
	defer f.Close()
	return ParseJournal(f)
}
