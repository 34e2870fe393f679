package localindex

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// Mailbox is one mailbox's index in memory: records sorted by UID, with
// lookups by UID and by the unique part of the file name. It belongs to
// one session and is not safe for concurrent use; several Mailboxes of one
// mailbox (two sessions of a user on this node) may exist at once and each
// Save stays correct (a Save that finds the files changed by another one
// writes a full index file instead of appending).
//
// The contract with the caller: after Save(spool), the records must equal
// the spool as it was at spool (the caller synced the spool, applied every
// difference with Upsert, SetFlags and Remove, and passes the state it took
// before reading the spool). Then an index whose state Equals the spool's
// current state can be trusted.
type Mailbox struct {
	x             *Index
	user, name    string
	dir, base     string // directory and path stem of the files
	fileMu        *sync.Mutex
	head          mailboxHead
	recs          []Record
	byUnique      map[string]uint32 // built on first use; nil = not built
	closed        bool
	dirty         bool // changed since the last successful Save
	savedSpool    SpoolState
	pending       []byte // encoded ops not yet written
	pendingOps    int
	needFull      bool // next Save writes a full index file
	gen           uint64
	idxInfo       os.FileInfo // the index file this state is based on
	logInfo       os.FileInfo // the log as last read or written; nil = none
	logSize       int64
	encodeScratch []byte
	counts        counts // kept up to date with recs, for Summary
}

// counts are the STATUS numbers of the records, kept as records change so
// that Summary costs nothing in a large mailbox.
type counts struct {
	unseen, recent, deleted, unparsed int
	size, deletedSize                 int64
}

func (c *counts) add(r *Record, sign int) {
	if r.Flags&FlagSeen == 0 {
		c.unseen += sign
	}
	if r.InNew {
		c.recent += sign
	}
	deleted := r.Flags&FlagDeleted != 0
	if deleted {
		c.deleted += sign
	}
	if r.Parsed {
		c.size += int64(sign) * r.Size
		if deleted {
			c.deletedSize += int64(sign) * r.Size
		}
	} else {
		c.unparsed += sign
	}
}

func (x *Index) newMailbox(user, mailbox string) *Mailbox {
	dir := x.userDir(user)
	m := &Mailbox{
		x: x, user: user, name: mailbox,
		dir: dir, base: filepath.Join(dir, mailboxBase(mailbox)),
		fileMu: x.lockFor(user, mailbox),
	}
	x.acquire(user)
	return m
}

// NewMailbox returns an empty index for a mailbox, to be filled from the
// spool (after LoadMailbox failed, or after UIDVALIDITY changed). Nothing is
// written until Save.
func (x *Index) NewMailbox(user, mailbox string, uidValidity uint32) *Mailbox {
	m := x.newMailbox(user, mailbox)
	m.head.uidValidity = uidValidity
	m.needFull = true
	m.dirty = true
	return m
}

// LoadMailbox reads a mailbox's index: the index file and its change log.
// A missing index is ErrNotFound; a corrupt, partial or foreign one is
// removed, logged, counted and reported as ErrCorrupt. On either error the
// caller builds the index from the spool with NewMailbox. A damaged tail of
// the log is dropped (the state is then older, and its spool state says
// so). The caller must Close the Mailbox.
func (x *Index) LoadMailbox(user, mailbox string) (*Mailbox, error) {
	dir := x.userDir(user)
	base := filepath.Join(dir, mailboxBase(mailbox))
	b, fi, err := readFile(base + extIndex)
	if err != nil {
		x.st.mailboxMisses.Add(1)
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		x.removeQuiet(user, mailbox, base+extLog)
		return nil, x.discard(user, mailbox, base+extIndex, fi, err)
	}
	di, err := decodeIndex(b)
	if err == nil && (di.user != user || di.mailbox != mailbox) {
		err = fmt.Errorf("%w: index of another user or mailbox", ErrCorrupt)
	}
	if err != nil {
		x.st.mailboxMisses.Add(1)
		x.removeQuiet(user, mailbox, base+extLog)
		return nil, x.discard(user, mailbox, base+extIndex, fi, err)
	}
	m := x.newMailbox(user, mailbox)
	m.head, m.recs, m.gen, m.idxInfo = di.head, di.recs, di.gen, fi
	for i := range m.recs {
		m.counts.add(&m.recs[i], 1)
	}

	// The log is read under the mailbox's lock so that an append in
	// progress in another session is not mistaken for a torn tail.
	m.fileMu.Lock()
	lb, lfi, err := readFile(base + extLog)
	m.fileMu.Unlock()
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		m.needFull = true
		x.st.corrupt.Add(1)
		x.logger.Warn("cannot read local index log", "user", user, "mailbox", mailbox, "err", err)
	default:
		valid, perr := parseLog(lb, di.gen, m.applyEntry)
		m.logInfo, m.logSize = lfi, int64(valid)
		if perr != nil {
			m.needFull = true
			if !errors.Is(perr, errStaleLog) {
				x.st.corrupt.Add(1)
				x.logger.Warn("dropping damaged tail of local index log", "user", user, "mailbox", mailbox, "valid", valid, "size", len(lb), "err", perr)
			}
		}
	}
	m.savedSpool = m.head.spool
	x.st.mailboxHits.Add(1)
	return m, nil
}

// removeQuiet removes a file under the mailbox's lock, ignoring errors.
func (x *Index) removeQuiet(user, mailbox, path string) {
	mu := x.lockFor(user, mailbox)
	mu.Lock()
	_ = os.Remove(path)
	mu.Unlock()
}

// applyEntry applies one log entry to the records in memory.
func (m *Mailbox) applyEntry(h *mailboxHead, ops []logOp) {
	m.head = *h
	for i := range ops {
		o := &ops[i]
		switch o.kind {
		case opUpsert:
			m.upsertMem(o.rec)
		case opRemove:
			m.removeMem(o.rec.UID)
		case opFlags:
			m.setFlagsMem(o.rec.UID, o.rec.File, o.rec.InNew, o.rec.Flags, o.rec.Keywords)
		}
	}
}

// User and Name say whose mailbox this is.
func (m *Mailbox) User() string { return m.user }

// Name is the mailbox name given to LoadMailbox or NewMailbox.
func (m *Mailbox) Name() string { return m.name }

// UIDValidity is the mailbox's UIDVALIDITY.
func (m *Mailbox) UIDValidity() uint32 { return m.head.uidValidity }

// UIDNext is the mailbox's UIDNEXT as last set.
func (m *Mailbox) UIDNext() uint32 { return m.head.uidNext }

// Keywords are the mailbox's keyword names as last set (read-only).
func (m *Mailbox) Keywords() []string { return m.head.keywords }

// Spool is the spool state of the last Save (or of the loaded files): the
// records equal the spool as it was then.
func (m *Mailbox) Spool() SpoolState { return m.head.spool }

// Len is the number of messages.
func (m *Mailbox) Len() int { return len(m.recs) }

// Records returns the records sorted by UID. The slice is the index's own:
// read it only, and only until the next change to the Mailbox.
func (m *Mailbox) Records() []Record { return m.recs }

func (m *Mailbox) find(uid uint32) (int, bool) {
	// By index, not slices.BinarySearchFunc: that passes each probed
	// Record (some 250 bytes) by value, which made a lookup per message
	// the larger part of a warm SORT.
	lo, hi := 0, len(m.recs)
	for lo < hi {
		h := int(uint(lo+hi) >> 1)
		if m.recs[h].UID < uid {
			lo = h + 1
		} else {
			hi = h
		}
	}
	return lo, lo < len(m.recs) && m.recs[lo].UID == uid
}

// Lookup finds a message by UID.
func (m *Mailbox) Lookup(uid uint32) (Record, bool) {
	if i, ok := m.find(uid); ok {
		return m.recs[i], true
	}
	return Record{}, false
}

// ByUnique finds a message by the unique part of its file name (the name
// before ':'). The first call builds a map.
func (m *Mailbox) ByUnique(unique string) (Record, bool) {
	if m.byUnique == nil {
		m.byUnique = make(map[string]uint32, len(m.recs))
		for i := range m.recs {
			m.byUnique[m.recs[i].Unique()] = m.recs[i].UID
		}
	}
	uid, ok := m.byUnique[unique]
	if !ok {
		return Record{}, false
	}
	return m.Lookup(uid)
}

// SetUIDNext sets UIDNEXT.
func (m *Mailbox) SetUIDNext(n uint32) {
	if n != m.head.uidNext {
		m.head.uidNext = n
		m.dirty = true
	}
}

// SetKeywords sets the mailbox's keyword names. The index keeps the slice.
func (m *Mailbox) SetKeywords(kw []string) {
	if !slices.Equal(kw, m.head.keywords) {
		m.head.keywords = kw
		m.dirty = true
	}
}

// Reset drops every record and sets a new UIDVALIDITY (the spool's changed:
// all UIDs are new).
func (m *Mailbox) Reset(uidValidity uint32) {
	m.recs = nil
	m.byUnique = nil
	m.counts = counts{}
	m.head.uidValidity = uidValidity
	m.head.uidNext = 0
	m.pending, m.pendingOps = m.pending[:0], 0
	m.needFull = true
	m.dirty = true
}

// Upsert adds a message or replaces the record of its UID. The index keeps
// r's slices: the caller must not change them afterwards. A zero UID is
// ignored.
func (m *Mailbox) Upsert(r Record) {
	if r.UID == 0 {
		return
	}
	m.upsertMem(r)
	m.dirty = true
	if !m.needFull {
		m.pending = append(m.pending, opUpsert)
		m.pending = appendRecord(m.pending, &r)
		m.pendingOps++
	}
}

func (m *Mailbox) upsertMem(r Record) {
	if m.byUnique != nil {
		if old, ok := m.Lookup(r.UID); ok {
			delete(m.byUnique, old.Unique())
		}
		m.byUnique[r.Unique()] = r.UID
	}
	m.counts.add(&r, 1)
	if n := len(m.recs); n == 0 || m.recs[n-1].UID < r.UID {
		m.recs = append(m.recs, r)
		return
	}
	i, ok := m.find(r.UID)
	if ok {
		m.counts.add(&m.recs[i], -1)
		m.recs[i] = r
		return
	}
	m.recs = slices.Insert(m.recs, i, r)
}

// SetFlags changes a message's file name, place and flags (a flag change on
// the spool renames the file). It reports false when the UID is unknown.
func (m *Mailbox) SetFlags(uid uint32, file string, inNew bool, flags Flags, keywords []string) bool {
	if !m.setFlagsMem(uid, file, inNew, flags, keywords) {
		return false
	}
	m.dirty = true
	if !m.needFull {
		m.pending = appendFlagsOp(m.pending, uid, file, inNew, flags, keywords)
		m.pendingOps++
	}
	return true
}

func (m *Mailbox) setFlagsMem(uid uint32, file string, inNew bool, flags Flags, keywords []string) bool {
	i, ok := m.find(uid)
	if !ok {
		return false
	}
	r := &m.recs[i]
	if m.byUnique != nil && uniquePart(file) != r.Unique() {
		delete(m.byUnique, r.Unique())
		m.byUnique[uniquePart(file)] = uid
	}
	m.counts.add(r, -1)
	r.File, r.InNew, r.Flags, r.Keywords = file, inNew, flags, keywords
	m.counts.add(r, 1)
	return true
}

// Remove drops the records of the given UIDs (expunged messages) and
// returns how many it found.
func (m *Mailbox) Remove(uids ...uint32) int {
	n := 0
	if len(uids) > 8 {
		set := make(map[uint32]struct{}, len(uids))
		for _, u := range uids {
			set[u] = struct{}{}
		}
		before := len(m.recs)
		m.recs = slices.DeleteFunc(m.recs, func(r Record) bool {
			_, gone := set[r.UID]
			if gone {
				m.counts.add(&r, -1)
				if m.byUnique != nil {
					delete(m.byUnique, r.Unique())
				}
			}
			return gone
		})
		n = before - len(m.recs)
		if n > 0 {
			m.dirty = true
			if !m.needFull {
				for _, u := range uids {
					m.pending = append(m.pending, opRemove)
					m.pending = binary.AppendUvarint(m.pending, uint64(u))
					m.pendingOps++
				}
			}
		}
		return n
	}
	for _, u := range uids {
		if !m.removeMem(u) {
			continue
		}
		n++
		m.dirty = true
		if !m.needFull {
			m.pending = append(m.pending, opRemove)
			m.pending = binary.AppendUvarint(m.pending, uint64(u))
			m.pendingOps++
		}
	}
	return n
}

func (m *Mailbox) removeMem(uid uint32) bool {
	i, ok := m.find(uid)
	if !ok {
		return false
	}
	if m.byUnique != nil {
		delete(m.byUnique, m.recs[i].Unique())
	}
	m.counts.add(&m.recs[i], -1)
	m.recs = slices.Delete(m.recs, i, i+1)
	return true
}

// Summary computes the mailbox's STATUS numbers from the records: RECENT
// counts the messages in new/; SIZE (and the size of the \Deleted
// messages) is -1 when a record was never parsed.
func (m *Mailbox) Summary() Summary {
	s := Summary{
		Spool:       m.head.spool,
		UIDValidity: m.head.uidValidity,
		UIDNext:     m.head.uidNext,
		Messages:    uint32(len(m.recs)),
		Unseen:      uint32(m.counts.unseen),
		Recent:      uint32(m.counts.recent),
		Size:        m.counts.size,
		Deleted:     uint32(m.counts.deleted),
		DeletedSize: m.counts.deletedSize,
	}
	if m.counts.unparsed > 0 {
		s.Size, s.DeletedSize = -1, -1
	}
	return s
}

// Save commits the changes made since the last Save, declaring that the
// records now equal the spool at spool, and writes the mailbox's summary
// (Summary()). Small changes are appended to the change log; a new mailbox,
// a long log or files changed by another session get a full index file.
//
// Callers must treat an error as "serve from the spool": log it at most and
// go on with the records in memory, which stay correct; a later Save writes
// everything again.
func (m *Mailbox) Save(spool SpoolState) error {
	if m.closed {
		return ErrClosed
	}
	if spool != m.head.spool {
		m.head.spool = spool
		m.dirty = true
	}
	if !m.dirty && !m.needFull {
		return nil
	}
	m.fileMu.Lock()
	err := m.saveLocked()
	m.fileMu.Unlock()
	if err != nil {
		return err
	}
	m.dirty = false
	m.savedSpool = spool
	sum := m.Summary()
	return m.x.StoreSummary(m.user, m.name, &sum)
}

// errNeedFull: appending is not possible; write a full index file.
var errNeedFull = errors.New("full index file needed")

func (m *Mailbox) saveLocked() error {
	if !m.needFull && m.gen != 0 {
		err := m.appendLocked()
		if err == nil || !errors.Is(err, errNeedFull) {
			return err
		}
	}
	return m.writeFullLocked()
}

// appendLocked appends the pending changes to the log, after checking that
// the index file and the log are still the ones this Mailbox knows.
func (m *Mailbox) appendLocked() error {
	var b []byte
	if m.logInfo == nil {
		b = appendLogHeader(make([]byte, 0, logHead+logEntryHead+64+len(m.pending)), m.gen)
	} else {
		b = make([]byte, 0, logEntryHead+64+len(m.pending))
	}
	b, start := startEntry(b)
	b = appendHead(b, &m.head)
	b = binary.AppendUvarint(b, uint64(m.pendingOps))
	b = append(b, m.pending...)
	b = finishEntry(b, start)

	limit := m.x.cfg.CompactBytes
	if m.idxInfo != nil && m.idxInfo.Size() < limit {
		limit = max(m.idxInfo.Size(), 4096)
	}
	if m.logSize+int64(len(b)) > limit {
		return errNeedFull
	}
	if st, err := os.Stat(m.base + extIndex); err != nil || !sameFile(st, m.idxInfo) {
		return errNeedFull
	}
	path := m.base + extLog
	st, err := os.Stat(path)
	switch {
	case m.logInfo == nil && !errors.Is(err, os.ErrNotExist):
		return errNeedFull
	case m.logInfo != nil && (err != nil || !os.SameFile(st, m.logInfo) || st.Size() != m.logSize):
		return errNeedFull
	}
	if err := m.x.beginWrite(path); err != nil {
		m.needFull = true
		return err
	}
	flags := os.O_WRONLY | os.O_APPEND
	if m.logInfo == nil {
		flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	}
	st, err = m.writeLog(path, flags, b)
	if err != nil {
		m.needFull = true
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrExist) {
			// The directory was removed (eviction, an operator) or
			// another writer created the log meanwhile: not a disk
			// problem; a full index file repairs it.
			return errNeedFull
		}
		return m.x.writeFailed(path, err)
	}
	if st.Size() != m.logSize+int64(len(b)) {
		// Someone else wrote to it at the same time: not ours to trust.
		m.needFull = true
		return errNeedFull
	}
	m.logInfo, m.logSize = st, st.Size()
	m.pending, m.pendingOps = m.pending[:0], 0
	m.x.writeOK(len(b))
	m.x.st.logAppends.Add(1)
	return nil
}

func (m *Mailbox) writeLog(path string, flags int, b []byte) (os.FileInfo, error) {
	f, err := os.OpenFile(path, flags, m.x.cfg.FileMode)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return nil, err
	}
	if m.x.cfg.Fsync {
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	st, err := f.Stat()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return st, err
}

// sameFile compares the identity, size and change time of two files.
func sameFile(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// writeFullLocked writes a full index file and drops the log.
func (m *Mailbox) writeFullLocked() error {
	gen := rand.Uint64() | 1
	m.encodeScratch = encodeIndex(m.encodeScratch[:0], gen, m.user, m.name, &m.head, m.recs)
	fi, err := m.x.writeFile(m.dir, filepath.Base(m.base)+extIndex, m.encodeScratch)
	if cap(m.encodeScratch) > 1<<20 {
		m.encodeScratch = nil // do not hold a large buffer between saves
	}
	if err != nil {
		m.needFull = true
		return err
	}
	m.gen, m.idxInfo = gen, fi
	m.logInfo, m.logSize = nil, 0
	if err := os.Remove(m.base + extLog); err != nil && !errors.Is(err, os.ErrNotExist) {
		// A stale log is ignored on load (wrong generation) but blocks
		// appending: the next Save writes a full file again.
		m.x.logger.Warn("cannot remove local index log", "path", m.base+extLog, "err", err)
		m.needFull = true
	} else {
		m.needFull = false
	}
	m.pending, m.pendingOps = m.pending[:0], 0
	m.x.st.compactions.Add(1)
	return nil
}

// Close releases the Mailbox (its records are dropped). Unsaved changes are
// lost, which is harmless: the spool has them.
func (m *Mailbox) Close() {
	if m.closed {
		return
	}
	m.closed = true
	m.recs, m.byUnique, m.pending = nil, nil, nil
	m.x.release(m.user)
}
