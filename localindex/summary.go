package localindex

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

func appendSpool(b []byte, s SpoolState) []byte {
	b = binary.AppendVarint(b, s.NewMtime)
	b = binary.AppendVarint(b, s.CurMtime)
	b = binary.AppendVarint(b, s.UidlistMtime)
	b = binary.AppendVarint(b, s.NewSize)
	b = binary.AppendVarint(b, s.CurSize)
	b = binary.AppendVarint(b, s.UidlistSize)
	b = binary.AppendUvarint(b, s.NewIno)
	b = binary.AppendUvarint(b, s.CurIno)
	return binary.AppendUvarint(b, s.UidlistIno)
}

func (d *decoder) spool() SpoolState {
	return SpoolState{
		NewMtime: d.varint(), CurMtime: d.varint(), UidlistMtime: d.varint(),
		NewSize: d.varint(), CurSize: d.varint(), UidlistSize: d.varint(),
		NewIno: d.uvarint(), CurIno: d.uvarint(), UidlistIno: d.uvarint(),
	}
}

// encodeSummary gives the whole file for a mailbox's summary.
func encodeSummary(user, mailbox string, s *Summary) []byte {
	b := frameStart(make([]byte, 0, 128+len(user)+len(mailbox)), magicSummary)
	b = appendStr(b, user)
	b = appendStr(b, mailbox)
	b = appendSpool(b, s.Spool)
	b = binary.AppendUvarint(b, uint64(s.UIDValidity))
	b = binary.AppendUvarint(b, uint64(s.UIDNext))
	b = binary.AppendUvarint(b, uint64(s.Messages))
	b = binary.AppendUvarint(b, uint64(s.Unseen))
	b = binary.AppendUvarint(b, uint64(s.Recent))
	b = binary.AppendVarint(b, s.Size)
	b = binary.AppendUvarint(b, uint64(s.Deleted))
	b = binary.AppendVarint(b, s.DeletedSize)
	b = binary.AppendVarint(b, s.Updated.UnixNano())
	return frameFinish(b)
}

// decodeSummary checks and decodes a summary file. It returns the user and
// mailbox names stored in it (strings pointing into b).
func decodeSummary(b []byte) (user, mailbox string, s *Summary, err error) {
	p, err := unframe(b, magicSummary)
	if err != nil {
		return "", "", nil, err
	}
	d := decoder{b: p}
	user = d.str()
	mailbox = d.str()
	s = &Summary{Spool: d.spool()}
	s.UIDValidity = d.u32()
	s.UIDNext = d.u32()
	s.Messages = d.u32()
	s.Unseen = d.u32()
	s.Recent = d.u32()
	s.Size = d.varint()
	s.Deleted = d.u32()
	s.DeletedSize = d.varint()
	s.Updated = time.Unix(0, d.varint())
	if err := d.done(); err != nil {
		return "", "", nil, err
	}
	if s.Unseen > s.Messages || s.Recent > s.Messages || s.Deleted > s.Messages ||
		s.Size < -1 || s.DeletedSize < -1 || (s.Size < 0) != (s.DeletedSize < 0) || s.DeletedSize > s.Size {
		return "", "", nil, fmt.Errorf("%w: impossible summary counts", ErrCorrupt)
	}
	return user, mailbox, s, nil
}

// LoadSummary reads a mailbox's summary: a tiny file, one open and one read.
// The caller compares Summary.Spool with the spool's current state and uses
// the numbers only when they are Equal (after revalidation, DESIGN rule 5).
// A missing summary is ErrNotFound; a corrupt or foreign one is removed and
// reported as ErrCorrupt. Either way: compute STATUS from the spool.
func (x *Index) LoadSummary(user, mailbox string) (*Summary, error) {
	path := filepath.Join(x.userDir(user), mailboxBase(mailbox)+extSummary)
	b, fi, err := readFile(path)
	if err != nil {
		x.st.summaryMisses.Add(1)
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, x.discard(user, mailbox, path, fi, err)
	}
	u, m, s, err := decodeSummary(b)
	if err == nil && (u != user || m != mailbox) {
		err = fmt.Errorf("%w: summary of another user or mailbox", ErrCorrupt)
	}
	if err != nil {
		x.st.summaryMisses.Add(1)
		return nil, x.discard(user, mailbox, path, fi, err)
	}
	x.st.summaryHits.Add(1)
	return s, nil
}

// StoreSummary writes a mailbox's summary (replacing the old one at once).
// s.Updated is set to now. Callers must treat an error as "serve from the
// spool": log it at most and go on.
func (x *Index) StoreSummary(user, mailbox string, s *Summary) error {
	s.Updated = x.cfg.Now()
	b := encodeSummary(user, mailbox, s)
	_, err := x.writeFile(x.userDir(user), mailboxBase(mailbox)+extSummary, b)
	return err
}
