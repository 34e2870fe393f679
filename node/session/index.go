package session

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/nfsimap/nfsimap/localindex"
	"github.com/nfsimap/nfsimap/node/maildir"
)

// The selected mailbox's local index (localindex.Mailbox) lives in its
// registry entry: one per node, shared by the sessions that have the
// mailbox selected, guarded by idxMu, loaded at the first SELECT and
// saved and dropped when the last of them leaves, so a node holds in
// memory the indexes of the mailboxes selected on it and nothing else.
// Its records follow the installed snapshot (UID, file, flags, keywords)
// and keep what FETCH, SEARCH, SORT and THREAD parsed from each message
// (sizes, internal date, ENVELOPE, BODYSTRUCTURE, header fields), so a
// message file is read at most once while the index lives.
//
// The index is saved with the spool state the records equal. Changes this
// node makes itself (STORE, EXPUNGE, MOVE) are applied to the records but
// make the state unknown, so the next check reads the spool and saves a
// known state again. Every index error means "serve from the spool": it is
// logged once per mailbox and otherwise ignored.

// indexSnapshot brings the index records up to snap (read from the spool
// at state) and saves them.
func (b *sharedBox) indexSnapshot(ticket uint64, snap *maildir.Snapshot, state localindex.SpoolState) {
	b.idxMu.Lock()
	defer b.idxMu.Unlock()
	if ticket < b.idxTicket {
		return // a newer state was applied meanwhile
	}
	b.idxTicket, b.idxState = ticket, state
	if b.index == nil {
		if b.mem != nil {
			for uid := range b.mem {
				if _, ok := snap.Lookup(uid); !ok {
					delete(b.mem, uid)
				}
			}
		}
		return
	}
	if b.idx == nil {
		b.idx = b.index.NewMailbox(b.user, b.name, snap.UIDValidity)
	}
	idx := b.idx
	if idx.UIDValidity() != snap.UIDValidity {
		idx.Reset(snap.UIDValidity)
	}
	var gone []uint32
	var upserts []localindex.Record
	type flagChange struct {
		uid   uint32
		m     *maildir.Message
		flags localindex.Flags
	}
	var flagChanges []flagChange
	recs := idx.Records()
	i := 0
	for k := range snap.Messages {
		m := &snap.Messages[k]
		for i < len(recs) && recs[i].UID < m.UID {
			gone = append(gone, recs[i].UID)
			i++
		}
		f := indexFlags(m.Flags)
		if i < len(recs) && recs[i].UID == m.UID {
			r := &recs[i]
			i++
			if r.Unique() != m.Name.Unique {
				// Another message under this UID: forget the old one.
				upserts = append(upserts, localindex.Record{UID: m.UID, File: m.File, InNew: m.InNew, Flags: f, Keywords: m.Keywords})
				continue
			}
			if r.File != m.File || r.InNew != m.InNew || r.Flags != f || !slices.Equal(r.Keywords, m.Keywords) {
				flagChanges = append(flagChanges, flagChange{m.UID, m, f})
			}
			continue
		}
		upserts = append(upserts, localindex.Record{UID: m.UID, File: m.File, InNew: m.InNew, Flags: f, Keywords: m.Keywords})
	}
	for ; i < len(recs); i++ {
		gone = append(gone, recs[i].UID)
	}
	if len(gone) > 0 {
		idx.Remove(gone...)
	}
	for _, c := range flagChanges {
		idx.SetFlags(c.uid, c.m.File, c.m.InNew, c.flags, c.m.Keywords)
	}
	for _, r := range upserts {
		idx.Upsert(r)
	}
	idx.SetUIDNext(snap.UIDNext)
	idx.SetKeywords(snap.Keywords)
	b.saveLocked(state)
}

// saveLocked saves the index; idxMu is held.
func (b *sharedBox) saveLocked(state localindex.SpoolState) {
	if b.idx == nil {
		return
	}
	if err := b.idx.Save(state); err != nil && !b.idxErrLogged {
		b.idxErrLogged = true
		level := slog.LevelWarn
		if errors.Is(err, localindex.ErrDegraded) {
			level = slog.LevelInfo
		}
		b.logger.Log(context.Background(), level, "local index not saved, serving from the spool", "err", err)
	}
}

// indexFlags applies this node's flag changes to the records.
func (b *sharedBox) indexFlags(ticket uint64, changed []maildir.Message, keywords []string) {
	b.idxMu.Lock()
	defer b.idxMu.Unlock()
	b.idxTicket, b.idxState = ticket, localindex.SpoolState{}
	if b.idx == nil {
		return
	}
	for i := range changed {
		m := &changed[i]
		b.idx.SetFlags(m.UID, m.File, m.InNew, indexFlags(m.Flags), m.Keywords)
	}
	if keywords != nil {
		b.idx.SetKeywords(keywords)
	}
}

// indexRemove drops expunged messages from the records.
func (b *sharedBox) indexRemove(ticket uint64, uids []uint32) {
	b.idxMu.Lock()
	defer b.idxMu.Unlock()
	b.idxTicket, b.idxState = ticket, localindex.SpoolState{}
	if b.idx != nil {
		b.idx.Remove(uids...)
	}
	for _, u := range uids {
		delete(b.mem, u)
	}
}

// closeIndex saves the records with the state they are known to equal
// (idxState) and drops them; called when the last session leaves the
// mailbox.
func (b *sharedBox) closeIndex() {
	b.idxMu.Lock()
	defer b.idxMu.Unlock()
	if b.idx != nil {
		b.saveLocked(b.idxState)
		b.idx.Close()
		b.idx = nil
	}
	b.mem = nil
}

// parsed returns what was parsed from a message (Record.Parsed), if
// anything.
func (b *sharedBox) parsed(uid uint32) (localindex.Record, bool) {
	b.idxMu.Lock()
	defer b.idxMu.Unlock()
	if b.idx != nil {
		r, ok := b.idx.Lookup(uid)
		return r, ok && r.Parsed
	}
	r, ok := b.mem[uid]
	return r, ok
}

// rememberParsed keeps a message's parse. The record's place and flags
// stay what the index has now (they may have changed while the file was
// read).
func (b *sharedBox) rememberParsed(m *maildir.Message, p localindex.Record) {
	b.idxMu.Lock()
	defer b.idxMu.Unlock()
	if b.idx == nil {
		if b.index != nil {
			return // closed
		}
		if b.mem == nil {
			b.mem = make(map[uint32]localindex.Record)
		}
		b.mem[m.UID] = p
		return
	}
	r, ok := b.idx.Lookup(m.UID)
	if !ok || r.Unique() != m.Name.Unique {
		return
	}
	p.UID, p.File, p.InNew, p.Flags, p.Keywords = r.UID, r.File, r.InNew, r.Flags, r.Keywords
	b.idx.Upsert(p)
}

// flushParsed saves parses made by a command (the state is unchanged: a
// parse changes nothing on the spool).
func (b *sharedBox) flushParsed() {
	b.idxMu.Lock()
	defer b.idxMu.Unlock()
	b.saveLocked(b.idxState)
}

// indexedField is a header field the index keeps: its canonical name (as
// go-message's header reader spells keys), its bit in Headers.Present and
// its first value's place in Headers.
type indexedField struct {
	name  string
	bit   localindex.HeaderSet
	first func(*localindex.Headers) *string
}

// indexedFields are the header fields the index keeps for SEARCH, SORT and
// THREAD.
var indexedFields = [...]indexedField{
	{"Date", localindex.HeaderDate, func(h *localindex.Headers) *string { return &h.Date }},
	{"Subject", localindex.HeaderSubject, func(h *localindex.Headers) *string { return &h.Subject }},
	{"From", localindex.HeaderFrom, func(h *localindex.Headers) *string { return &h.From }},
	{"To", localindex.HeaderTo, func(h *localindex.Headers) *string { return &h.To }},
	{"Cc", localindex.HeaderCc, func(h *localindex.Headers) *string { return &h.Cc }},
	{"Bcc", localindex.HeaderBcc, func(h *localindex.Headers) *string { return &h.Bcc }},
	{"Message-Id", localindex.HeaderMessageID, func(h *localindex.Headers) *string { return &h.MessageID }},
	{"In-Reply-To", localindex.HeaderInReplyTo, func(h *localindex.Headers) *string { return &h.InReplyTo }},
	{"References", localindex.HeaderReferences, func(h *localindex.Headers) *string { return &h.References }},
}

// headersOf returns the header fields the index keeps, read the way the
// SEARCH matcher reads a message file (readHeader: unfolded values, every
// field of a name in message order), so that a search on them gives what
// a search of the file gives. SORT and THREAD use the first value of each.
func headersOf(content []byte) localindex.Headers {
	h := readHeader(content)
	out := localindex.Headers{Present: localindex.HeadersComplete}
	for i := range indexedFields {
		f := &indexedFields[i]
		first := true
		for fields := h.FieldsByKey(f.name); fields.Next(); {
			if first {
				*f.first(&out) = fields.Value()
				out.Present |= f.bit
				first = false
				continue
			}
			out.More = append(out.More, localindex.HeaderField{Name: f.name, Value: fields.Value()})
		}
	}
	return out
}

// IndexedHeaders implements IndexedMessage: the header fields the index
// kept when the message was last parsed on this node; false when it was
// not (then the matcher reads the file).
func (m *searchMsg) IndexedHeaders() (*localindex.Headers, bool) {
	rec, ok := m.sel.box.parsed(m.v.msg.UID)
	if !ok || rec.Header.Present&localindex.HeadersComplete == 0 {
		return nil, false
	}
	return &rec.Header, true
}

// parseMessage extracts what the index keeps from a message (content with
// CRLF line ends).
func parseMessage(content []byte, physical int64, date time.Time) localindex.Record {
	// The same extraction FETCH uses for an unparsed message, so a
	// cached answer equals a fresh one.
	env := extractEnvelope(content)
	bs := extractBodyStructure(content)
	return localindex.Record{
		Parsed:        true,
		Size:          int64(len(content)),
		PhysicalSize:  physical,
		InternalDate:  date,
		Envelope:      encodeEnvelope(env),
		BodyStructure: encodeBodyStructure(bs),
		Header:        headersOf(content),
	}
}

// cachedEnvelope and cachedBodyStructure decode a record's cached items;
// false when they are missing or undecodable (then the message is read).
func cachedEnvelope(r *localindex.Record) (*imap.Envelope, bool) {
	if !r.Parsed || r.Envelope == nil {
		return nil, false
	}
	env, err := decodeEnvelope(r.Envelope)
	return env, err == nil && env != nil
}

func cachedBodyStructure(r *localindex.Record) (imap.BodyStructure, bool) {
	if !r.Parsed || r.BodyStructure == nil {
		return nil, false
	}
	bs, err := decodeBodyStructure(r.BodyStructure)
	return bs, err == nil
}
