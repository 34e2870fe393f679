package maildir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nfsimap/nfsimap/nfslock"
)

// Mailbox is one maildir (INBOX or a folder). Its methods are safe for
// concurrent use; they serialize on the handle's own mutex (which guards
// only its cached view of the spool), so a session should use its own
// Mailbox rather than share one with other sessions. Any number of handles
// here and on other nodes may change the same maildir at once.
//
// Methods that take UIDs work from the handle's last Sync (they Sync first
// if there was none) and rescan on ENOENT: a message renamed by another
// node is found again under its new name; a message that is gone gives
// ErrNoMessage (or is skipped, where documented).
type Mailbox struct {
	store *Store
	name  string
	dir   string

	mu           sync.Mutex           // guards the fields below
	view         map[uint32]Message   // the messages as last seen, by UID
	ul           *Uidlist             // last uidlist read or written (never modified)
	ulIndex      map[string]int       // unique part -> index in ul.Records
	ulID         fileIdentity         // identity of the uidlist file ul came from
	kw           []string             // keyword names by index
	kwID         fileIdentity         // identity of the keywords file kw came from
	kwRead       bool                 // kw has been read once
	missingSince map[string]time.Time // unique parts in the uidlist but missing from the listing (or unlinked here), since when
	extraNames   map[string][]string  // unique part -> other names (relative paths) in the last listing
	dupsSeen     map[string]bool      // pairs of names of one unique part already looked at
	uidValidity  uint32               // last UIDVALIDITY seen, 0 before the first Sync
	lastSnap     *Snapshot            // last snapshot returned
}

// entry is a message file found by a listing.
type entry struct {
	file  string
	inNew bool
	name  Name
}

func (e *entry) rel() string {
	if e.inNew {
		return filepath.Join("new", e.file)
	}
	return filepath.Join("cur", e.file)
}

// wantFile is a file this handle just put into the maildir and wants a UID
// for, in order.
type wantFile struct {
	unique string
	file   string // name in cur/ (or new/ when inNew)
	inNew  bool
}

func newMailbox(s *Store, name, dir string) *Mailbox {
	return &Mailbox{
		store:        s,
		name:         name,
		dir:          dir,
		missingSince: map[string]time.Time{},
	}
}

// Name returns the IMAP name.
func (m *Mailbox) Name() string { return m.name }

// Path returns the maildir directory.
func (m *Mailbox) Path() string { return m.dir }

// Sync brings the handle up to date with the spool and returns the
// snapshot. It lists new/ and cur/ and reads dovecot-uidlist; files without
// a UID get one (under the uidlist's dot-lock, after re-reading the uidlist
// and checking each such file with an lstat, or listing again when there
// are many, see usableLocked) in the order of mtime then name. A uidlist missing
// on first sight is created; UW-IMAP ",U<n>" UIDs found in the names are
// then kept. A corrupt uidlist is rebuilt keeping what could be read.
// ENOENT while listing rescans; ESTALE is retried Options.StaleRetries
// times. A record whose file the listing misses for the first time makes
// it list again (see recheckMissingLocked), so every message on disk with
// a UID below the snapshot's highest is in the snapshot.
func (m *Mailbox) Sync(ctx context.Context, opt SyncOptions) (*Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	snap, _, err := m.syncLocked(ctx, opt, nil)
	return snap, err
}

// syncLocked runs a sync with retries on ESTALE. It returns the UIDs given
// to the wanted files (0 for one that could not be found).
func (m *Mailbox) syncLocked(ctx context.Context, opt SyncOptions, want []wantFile) (*Snapshot, []uint32, error) {
	var err error
	for i := 0; i <= m.store.opt.StaleRetries; i++ {
		if err = ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("maildir: sync %s: %w", m.dir, err)
		}
		var snap *Snapshot
		var uids []uint32
		snap, uids, err = m.syncOnceLocked(ctx, opt, want)
		if err == nil {
			return snap, uids, nil
		}
		if !isStale(err) {
			return nil, nil, err
		}
		m.store.opt.Logger.Debug("ESTALE during sync, retrying", "dir", m.dir, "err", err)
		m.ul = nil // read everything anew
	}
	return nil, nil, fmt.Errorf("maildir: sync %s: %w: %w", m.dir, ErrRetriesExhausted, err)
}

func (m *Mailbox) uidlistPath() string { return filepath.Join(m.dir, UidlistName) }

// readUidlistLocked returns the uidlist, from the cache when the file's
// identity (inode, size, mtime) is unchanged and force is false. A missing
// file gives nil. corrupt tells that the file must be rewritten.
func (m *Mailbox) readUidlistLocked(force bool) (ul *Uidlist, corrupt bool, err error) {
	path := m.uidlistPath()
	if force {
		m.store.revalidate(path)
	}
	if !force && m.ul != nil {
		st, err := os.Stat(path)
		if err == nil && identityOf(st) == m.ulID {
			return m.ul, false, nil
		}
	}
	data, id, err := m.store.readFile(path)
	if isNotExist(err) {
		m.ul, m.ulIndex = nil, nil
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	ul, perr := ParseUidlist(data)
	if perr != nil {
		m.store.opt.Logger.Warn("corrupt uidlist, it will be rewritten", "path", path, "err", perr)
		corrupt = true
	}
	m.setUidlistLocked(ul, id)
	return ul, corrupt, nil
}

func (m *Mailbox) setUidlistLocked(ul *Uidlist, id fileIdentity) {
	m.ul, m.ulID = ul, id
	m.ulIndex = nil
	if ul != nil {
		m.ulIndex = make(map[string]int, len(ul.Records))
		for i, r := range ul.Records {
			m.ulIndex[r.Unique()] = i
		}
		if m.uidValidity != 0 && m.uidValidity != ul.UIDValidity {
			m.store.opt.Logger.Warn("UIDVALIDITY changed on the spool", "dir", m.dir, "old", m.uidValidity, "new", ul.UIDValidity)
		}
		m.uidValidity = ul.UIDValidity
	}
}

// dupPair records two files with one unique part.
type dupPair struct{ kept, other entry }

// listLocked lists new/ then cur/ (in that order, so that a file moved from
// new/ to cur/ meanwhile is seen at least once). Files with the same
// unique part are one message: the one in cur/ wins; other pairs are
// reported for the locked phase to sort out.
//
// pre are the mtimes of new/ and cur/ taken before the listing (for the
// Store's ListingGuard; 0: unknown).
func (m *Mailbox) listLocked(pre dirTimes) (map[string]*entry, []dupPair, error) {
	ents := make(map[string]*entry, len(m.view)+16)
	var dups []dupPair
	for _, sub := range [2]string{"new", "cur"} {
		subdir := filepath.Join(m.dir, sub)
		mtime := pre.newMtime
		if sub == "cur" {
			mtime = pre.curMtime
		}
		names, err := m.store.listDir(subdir, mtime)
		if isNotExist(err) {
			if _, err2 := m.store.stat(m.dir); isNotExist(err2) {
				return nil, nil, fmt.Errorf("%w: %s: %w", ErrNoMailbox, m.name, err2)
			}
			// The maildir is there but not new/ or cur/: a lookup that
			// failed for a moment, or a maildir made without it. Make it
			// (EEXIST is fine) and list again.
			if err := m.store.mkdirOne(context.Background(), subdir); err != nil {
				if isNotExist(err) {
					return nil, nil, fmt.Errorf("%w: %s: %w", ErrNoMailbox, m.name, err)
				}
				return nil, nil, err
			}
			names, err = m.store.readDirNames(subdir)
		}
		if err != nil {
			return nil, nil, err
		}
		inNew := sub == "new"
		for _, fn := range names {
			n, err := ParseName(fn)
			if err != nil {
				continue // dot files, NFS silly-renamed files
			}
			e := &entry{file: fn, inNew: inNew, name: n}
			if old, ok := ents[n.Unique]; ok {
				if old.inNew && !inNew {
					dups = append(dups, dupPair{kept: *e, other: *old})
					ents[n.Unique] = e
				} else {
					dups = append(dups, dupPair{kept: *old, other: *e})
				}
				continue
			}
			ents[n.Unique] = e
		}
	}
	return ents, dups, nil
}

// recheckMissingLocked lists the maildir once more when records of ul
// that were not missing before are missing from the listing ents, and
// adds those the second listing finds to ents.
//
// A listing is not a snapshot of the directory: readdir(2) reads it in
// several calls (and NFS READDIR in several requests), and a file renamed
// in between (a flag change by another node or process) can be missed
// under both names, its old name read past after it was removed and its
// new one placed where the listing had already been. Such a message would
// be missing from a snapshot whose highest UID is above its own: the
// session would announce it expunged and, since a lower UID cannot be
// added to a view that showed a higher one, hide it until the next SELECT.
// A message that is really gone is missing from the second listing too;
// from then on it is in missingSince, and later syncs do not list twice
// for it. While new/ or cur/ change during a listing (their mtimes), it
// lists again, up to maxRelists times.
func (m *Mailbox) recheckMissingLocked(ul *Uidlist, ents map[string]*entry) error {
	if ul == nil {
		return nil
	}
	var suspects []string
	for _, r := range ul.Records {
		u := r.Unique()
		if _, ok := ents[u]; ok {
			continue
		}
		if _, known := m.missingSince[u]; known {
			continue
		}
		suspects = append(suspects, u)
	}
	if len(suspects) == 0 {
		return nil
	}
	found := 0
	for try := 0; try < maxRelists && len(suspects) > 0; try++ {
		before := m.dirTimesLocked()
		again, _, err := m.listLocked(before)
		if err != nil {
			return err
		}
		rest := suspects[:0]
		for _, u := range suspects {
			if e, ok := again[u]; ok {
				ents[u] = e
				found++
			} else {
				rest = append(rest, u)
			}
		}
		suspects = rest
		if m.dirTimesLocked() == before {
			break // nothing changed while listing: the listing is whole
		}
	}
	if found > 0 {
		m.store.opt.Logger.Debug("a listing missed renamed messages; listing again found them", "dir", m.dir, "found", found)
	}
	return nil
}

// maxRelists bounds the listings recheckMissingLocked makes while the
// maildir keeps changing under them.
const maxRelists = 4

// dirTimes are the mtimes of new/ and cur/.
type dirTimes struct{ newMtime, curMtime int64 }

// dirTimes returns the stamp's times of new/ and cur/ (0 for a zero time).
func (s Stamp) dirTimes() dirTimes {
	var d dirTimes
	if !s.NewMtime.IsZero() {
		d.newMtime = s.NewMtime.UnixNano()
	}
	if !s.CurMtime.IsZero() {
		d.curMtime = s.CurMtime.UnixNano()
	}
	return d
}

func (m *Mailbox) dirTimesLocked() dirTimes {
	var d dirTimes
	if st, err := os.Stat(filepath.Join(m.dir, "new")); err == nil {
		d.newMtime = st.ModTime().UnixNano()
	}
	if st, err := os.Stat(filepath.Join(m.dir, "cur")); err == nil {
		d.curMtime = st.ModTime().UnixNano()
	}
	return d
}

func (s *Store) readDirNames(dir string) ([]string, error) {
	var names []string
	err := s.retryStale(func() error {
		var err error
		names, err = listNames(dir)
		return err
	})
	if err != nil && !isNotExist(err) {
		return nil, fmt.Errorf("maildir: list %s: %w", dir, err)
	}
	return names, err
}

// resolveDupsLocked sorts out files sharing a unique part; the uidlist lock
// is held. Two names of one inode (a crash between link and unlink) are one
// message: nothing is removed, because on NFS either name may be a stale
// cache entry and unlinking the wrong one would lose the message. Two
// different files: the other one is renamed to a fresh unique part, so that
// both stay visible and get their own UIDs; rename(2) goes by name on the
// filer, so a name that is only a stale cache entry fails with ENOENT and
// nothing happens. It reports whether anything changed.
func (m *Mailbox) resolveDupsLocked(dups []dupPair) bool {
	changed := false
	for _, d := range dups {
		kp := filepath.Join(m.dir, d.kept.rel())
		op := filepath.Join(m.dir, d.other.rel())
		ks, err1 := os.Lstat(kp)
		os2, err2 := os.Lstat(op)
		if err1 != nil || err2 != nil || os.SameFile(ks, os2) {
			continue
		}
		nn := d.other.name
		nn.Unique = m.store.newUnique()
		target := filepath.Join(filepath.Dir(op), nn.String())
		if err := os.Rename(op, target); err != nil {
			if !isNotExist(err) {
				m.store.opt.Logger.Warn("cannot rename a file with a duplicate unique part", "dir", m.dir, "file", d.other.rel(), "err", err)
			}
			continue
		}
		m.store.opt.Listings.forget(m.dir)
		m.store.op(OpRename)
		m.store.opt.Logger.Warn("two messages had one unique part; renamed one", "dir", m.dir, "from", d.other.rel(), "to", nn.String())
		changed = true
	}
	return changed
}

func (m *Mailbox) stampLocked() Stamp {
	var s Stamp
	if st, err := os.Stat(filepath.Join(m.dir, "new")); err == nil {
		s.NewMtime = st.ModTime()
	}
	if st, err := os.Stat(filepath.Join(m.dir, "cur")); err == nil {
		s.CurMtime = st.ModTime()
	}
	if st, err := os.Stat(m.uidlistPath()); err == nil {
		s.UidlistMtime = st.ModTime()
		s.UidlistSize = st.Size()
		_, s.UidlistIno = inodeOf(st)
	}
	return s
}

// dropDueLocked tells whether the record of a missing file may be dropped:
// it has been missing (or was unlinked by this handle) for ExpungeGrace.
// Dropping it earlier is dangerous: another node whose cached listing
// still shows the file would give it a new UID, a ghost message.
func (m *Mailbox) dropDueLocked(unique string, now time.Time) bool {
	grace := m.store.opt.ExpungeGrace
	if grace == 0 {
		return true
	}
	since, ok := m.missingSince[unique]
	return ok && now.Sub(since) >= grace
}

func (m *Mailbox) syncOnceLocked(ctx context.Context, opt SyncOptions, want []wantFile) (*Snapshot, []uint32, error) {
	stamp := m.stampLocked()
	if opt.IfChanged && len(want) == 0 && m.unchangedLocked(stamp, opt) {
		snap := *m.lastSnap
		snap.MovedFromNew = nil
		m.store.op(OpSyncUnchanged)
		return &snap, nil, nil
	}
	m.store.op(OpSync)
	ul, corrupt, err := m.readUidlistLocked(false)
	if err != nil {
		return nil, nil, err
	}
	ents, dups, err := m.listLocked(stamp.dirTimes())
	if err != nil {
		return nil, nil, err
	}
	if err := m.recheckMissingLocked(ul, ents); err != nil {
		return nil, nil, err
	}
	m.extraNames = nil
	for _, d := range dups {
		if m.extraNames == nil {
			m.extraNames = map[string][]string{}
		}
		m.extraNames[d.other.name.Unique] = append(m.extraNames[d.other.name.Unique], d.other.rel())
	}
	need := ul == nil || corrupt || len(want) > 0
	newDups := false
	for _, d := range dups {
		// Each pair is looked at once under the lock (two different files
		// get renamed apart there); two names of one inode stay, and must
		// not make every later sync take the lock.
		key := d.kept.rel() + "\x00" + d.other.rel()
		if !m.dupsSeen[key] {
			if m.dupsSeen == nil {
				m.dupsSeen = map[string]bool{}
			}
			m.dupsSeen[key] = true
			need, newDups = true, true
		}
	}
	if !need {
		for u := range ents {
			if _, ok := m.ulIndex[u]; !ok {
				need = true
				break
			}
		}
	}
	now := m.store.opt.Now()
	if ul != nil {
		for _, r := range ul.Records {
			u := r.Unique()
			if _, ok := ents[u]; ok {
				delete(m.missingSince, u)
			} else if _, ok := m.missingSince[u]; !ok {
				m.missingSince[u] = now
			}
		}
	}
	var uids []uint32
	if need {
		var pre *listing
		if !newDups {
			pre = &listing{ents: ents, stamp: stamp}
		}
		nul, nents, nuids, nstamp, err := m.assignLocked(ctx, want, pre)
		switch {
		case err == nil:
			ul, ents, uids, stamp = nul, nents, nuids, nstamp
		case errors.Is(err, nfslock.ErrTimeout) && len(want) == 0 && ul != nil && !corrupt:
			// The uidlist lock is held too long (by a crashed node, until
			// it goes stale): serve what has UIDs; the new files show up
			// at a later sync.
			m.store.opt.Logger.Warn("uidlist lock not available, new mail stays hidden for now", "dir", m.dir, "err", err)
			stamp = Stamp{} // never "unchanged"
		default:
			return nil, nil, err
		}
	}
	kw, err := m.keywordsLocked(false)
	if err != nil {
		return nil, nil, err
	}
	snap := m.buildSnapshotLocked(ul, ents, kw, stamp)
	if opt.MoveNew {
		if err := m.moveNewLocked(ctx, snap); err != nil {
			return nil, nil, err
		}
	}
	m.lastSnap = snap
	return snap, uids, nil
}

// unchangedLocked tells whether the last snapshot can stand for stamp.
func (m *Mailbox) unchangedLocked(stamp Stamp, opt SyncOptions) bool {
	last := m.lastSnap
	if last == nil || !stamp.Equal(last.Stamp) || stamp.CurMtime.IsZero() {
		return false
	}
	now := m.store.opt.Now()
	if now.Sub(stamp.NewMtime) < 2*time.Second || now.Sub(stamp.CurMtime) < 2*time.Second {
		return false
	}
	if opt.MoveNew {
		for _, msg := range last.Messages {
			if msg.InNew {
				return false
			}
		}
	}
	return true
}

// listing is a listing of the maildir taken before the uidlist lock, with
// the stamp taken before it.
type listing struct {
	ents  map[string]*entry
	stamp Stamp
}

// maxCheckedFiles is how many listed files without a UID assignUnderLock
// checks one by one (an lstat each) instead of listing the maildir again.
const maxCheckedFiles = 64

// assignLocked takes the uidlist lock, reads the uidlist anew, gives UIDs
// to the files without one (the wanted files last, in their order) and
// writes the uidlist. The files come from pre, the listing taken before
// the lock, when it can be used (see assignUnderLock), else from a new
// listing.
//
// The returned stamp has the times of new/ and cur/ from before the
// listing used and the uidlist's identity after the write: no one else
// changes the uidlist while the lock is held.
func (m *Mailbox) assignLocked(ctx context.Context, want []wantFile, pre *listing) (*Uidlist, map[string]*entry, []uint32, Stamp, error) {
	lock, err := m.store.lock(ctx, m.uidlistPath())
	if err != nil {
		return nil, nil, nil, Stamp{}, err
	}
	defer m.store.unlock(lock)
	var (
		ul    *Uidlist
		ents  map[string]*entry
		uids  []uint32
		stamp Stamp
	)
	err = m.store.waitVisible(ctx, func() error {
		var err error
		ul, ents, uids, stamp, err = m.assignUnderLock(ctx, lock, want, pre)
		if errors.Is(err, errNameTaken) {
			// The uidlist existed after all but this client cannot see it
			// yet: wait, read it and start over.
			return fmt.Errorf("%w (%w)", errNameTaken, fs.ErrNotExist)
		}
		return err
	})
	return ul, ents, uids, stamp, err
}

// usableLocked tells whether the listing pre, taken before the uidlist
// lock, may stand for the maildir under the lock, given the uidlist just
// read under it: pre is there, the uidlist was read whole, and at most
// maxCheckedFiles listed files lack a UID.
//
// Why that is safe: what a listing taken before the lock can get wrong is
// a file without a UID that another node, in between, gave a UID, then
// expunged and dropped from the uidlist; giving it a UID again would bring
// an expunged message back. Every listed file without a UID in the uidlist
// read under the lock is checked by an lstat of its path (assignUnderLock
// does that anyway, for its mtime) and left out when it is gone; the next
// sync sees it again if it was only moved. A file another node gave a UID
// in between is in that uidlist and needs no check. A record of that
// uidlist whose file the listing lacks (delivered and numbered by another
// node in between) makes recheckMissingLocked list again, as always.
// Files that appeared after the listing are not seen: the returned stamp
// has the times from before the listing, so the next sync looks again.
func (m *Mailbox) usableLocked(pre *listing, ul *Uidlist, corrupt bool) bool {
	if pre == nil || ul == nil || corrupt {
		return false
	}
	unknown := 0
	for u := range pre.ents {
		if _, ok := m.ulIndex[u]; !ok {
			unknown++
			if unknown > maxCheckedFiles {
				return false
			}
		}
	}
	return true
}

func (m *Mailbox) assignUnderLock(ctx context.Context, lock *nfslock.Lock, want []wantFile, pre *listing) (_ *Uidlist, _ map[string]*entry, _ []uint32, stamp Stamp, err error) {
	old, corrupt, err := m.readUidlistLocked(true)
	if err != nil {
		return nil, nil, nil, stamp, err
	}
	create := old == nil && !corrupt
	var ents map[string]*entry
	if m.usableLocked(pre, old, corrupt) {
		stamp = pre.stamp
		ents = make(map[string]*entry, len(pre.ents)+len(want))
		for u, e := range pre.ents {
			ents[u] = e
		}
		m.cleanTmpLocked()
	} else {
		stamp = m.stampLocked()
		if create {
			old = m.courierUIDsLocked()
		}
		var dups []dupPair
		ents, dups, err = m.listLocked(stamp.dirTimes())
		if err != nil {
			return nil, nil, nil, stamp, err
		}
		m.cleanTmpLocked()
		if len(dups) > 0 && m.resolveDupsLocked(dups) {
			if ents, _, err = m.listLocked(m.dirTimesLocked()); err != nil {
				return nil, nil, nil, stamp, err
			}
		}
	}
	if err := m.recheckMissingLocked(old, ents); err != nil {
		return nil, nil, nil, stamp, err
	}
	// Our own files are visible to us; add any the listing missed.
	for _, w := range want {
		if _, ok := ents[w.unique]; ok {
			continue
		}
		e := &entry{file: w.file, inNew: w.inNew}
		if _, err := m.store.lstat(filepath.Join(m.dir, e.rel())); err != nil {
			continue
		}
		n, err := ParseName(w.file)
		if err != nil {
			continue
		}
		e.name = n
		ents[w.unique] = e
	}

	now := m.store.opt.Now()
	nu := &Uidlist{Version: 3}
	if old != nil {
		nu.UIDValidity, nu.NextUID, nu.GUID = old.UIDValidity, old.NextUID, old.GUID
		nu.HeaderExt = append([]string(nil), old.HeaderExt...)
		nu.Records = make([]UidRecord, 0, len(old.Records)+len(ents))
	} else {
		nu.UIDValidity = m.newUIDValidityLocked(now)
		nu.NextUID = 1
	}
	known := make(map[string]bool, len(ents))
	if old != nil {
		for _, r := range old.Records {
			u := r.Unique()
			if _, ok := ents[u]; !ok && m.dropDueLocked(u, now) {
				delete(m.missingSince, u)
				continue
			}
			known[u] = true
			nu.Records = append(nu.Records, UidRecord{UID: r.UID, Ext: r.Ext, File: u})
		}
	} else {
		// First sight: keep UW-IMAP's UIDs, in their order.
		type uw struct {
			uid    uint32
			unique string
		}
		var uws []uw
		for u, e := range ents {
			if e.name.UWUID > 0 && e.name.UWUID < 0xffffffff {
				uws = append(uws, uw{e.name.UWUID, u})
			}
		}
		sort.Slice(uws, func(i, j int) bool {
			if uws[i].uid != uws[j].uid {
				return uws[i].uid < uws[j].uid
			}
			return uws[i].unique < uws[j].unique
		})
		for _, w := range uws {
			if n := len(nu.Records); n > 0 && nu.Records[n-1].UID == w.uid {
				continue // two files claim one UID: the second gets a new one
			}
			nu.Records = append(nu.Records, UidRecord{UID: w.uid, File: w.unique})
			known[w.unique] = true
			nu.NextUID = w.uid + 1
		}
	}
	isWanted := make(map[string]bool, len(want))
	for _, w := range want {
		isWanted[w.unique] = true
	}
	type newFile struct {
		unique string
		mtime  time.Time
	}
	var fresh []newFile
	for u, e := range ents {
		if known[u] || isWanted[u] {
			continue
		}
		st, err := m.store.lstat(filepath.Join(m.dir, e.rel()))
		if err != nil {
			// Moved (new/ -> cur/) or expunged meanwhile: the next sync
			// sees it again.
			delete(ents, u)
			continue
		}
		fresh = append(fresh, newFile{u, st.ModTime()})
	}
	sort.Slice(fresh, func(i, j int) bool {
		if !fresh[i].mtime.Equal(fresh[j].mtime) {
			return fresh[i].mtime.Before(fresh[j].mtime)
		}
		return fresh[i].unique < fresh[j].unique
	})
	add := func(u string) (uint32, error) {
		if nu.NextUID == math.MaxUint32 {
			return 0, fmt.Errorf("maildir: %s: UIDs exhausted", m.dir)
		}
		uid := nu.NextUID
		nu.NextUID++
		nu.Records = append(nu.Records, UidRecord{UID: uid, File: u})
		known[u] = true
		return uid, nil
	}
	for _, f := range fresh {
		if _, err := add(f.unique); err != nil {
			return nil, nil, nil, stamp, err
		}
	}
	for _, w := range want {
		if _, ok := ents[w.unique]; ok && !known[w.unique] {
			if _, err := add(w.unique); err != nil {
				return nil, nil, nil, stamp, err
			}
		}
	}
	uids := make([]uint32, len(want))
	if len(want) > 0 {
		byUnique := make(map[string]uint32, len(nu.Records))
		for _, r := range nu.Records {
			byUnique[r.File] = r.UID
		}
		for i, w := range want {
			uids[i] = byUnique[w.unique]
		}
	}
	if err := m.store.replaceFile(m.uidlistPath(), nu.Marshal(), lock, create); err != nil {
		return nil, nil, nil, stamp, err
	}
	var id fileIdentity
	stamp.UidlistMtime, stamp.UidlistSize, stamp.UidlistIno = time.Time{}, 0, 0
	if st, err := os.Stat(m.uidlistPath()); err == nil {
		id = identityOf(st)
		stamp.UidlistMtime, stamp.UidlistSize = st.ModTime(), st.Size()
		_, stamp.UidlistIno = inodeOf(st)
	}
	m.setUidlistLocked(nu, id)
	return nu, ents, uids, stamp, nil
}

// CourierUIDDBName is Courier-IMAP's UID file. Its format is Dovecot's
// uidlist version 1; on first sight of a maildir without dovecot-uidlist
// its UIDs and UIDVALIDITY are kept.
const CourierUIDDBName = "courierimapuiddb"

func (m *Mailbox) courierUIDsLocked() *Uidlist {
	data, _, err := m.store.readFile(filepath.Join(m.dir, CourierUIDDBName))
	if err != nil {
		return nil
	}
	ul, err := ParseUidlist(data)
	if ul == nil {
		m.store.opt.Logger.Warn("unusable courierimapuiddb ignored", "dir", m.dir, "err", err)
		return nil
	}
	m.store.opt.Logger.Info("importing UIDs from courierimapuiddb", "dir", m.dir, "uidvalidity", ul.UIDValidity, "records", len(ul.Records))
	return ul
}

// tmpMaxAge is the age after which a file left in tmp/ is removed
// (Dovecot's rule: 36 hours; a delivery never takes that long).
const tmpMaxAge = 36 * time.Hour

// tmpScanInterval is how long after tmp/ was last listed (its atime) it
// is listed again for old files.
const tmpScanInterval = time.Hour

// cleanTmpLocked removes old files from tmp/, while the uidlist lock is
// held: at most once an hour per maildir and Store (a session makes one
// Store and may open a handle per command), and only when tmp/'s access
// time says that no one listed it for tmpScanInterval. Listing a directory
// updates its atime on the filer, so the atime tells every node when the
// last scan was (Dovecot's rule); a stale or never-updated atime (noatime)
// only makes the scan happen at the hourly rate.
func (m *Mailbox) cleanTmpLocked() {
	now := m.store.opt.Now()
	if !m.store.tmpCleanDue(m.dir, now) {
		return
	}
	dir := filepath.Join(m.dir, "tmp")
	if st, err := m.store.stat(dir); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && now.Sub(time.Unix(sys.Atim.Unix())) < tmpScanInterval {
			return
		}
	}
	names, err := m.store.readDirNames(dir)
	if err != nil {
		return
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		st, err := os.Lstat(p)
		if err != nil || !st.Mode().IsRegular() || now.Sub(st.ModTime()) < tmpMaxAge {
			continue
		}
		if err := os.Remove(p); err == nil {
			m.store.opt.Logger.Info("removed an old file from tmp/", "path", p, "mtime", st.ModTime())
		}
	}
}

// newUIDValidityLocked picks the UIDVALIDITY of a maildir that has no
// usable uidlist: the store's counter (see UIDValidityName), never the
// value this handle saw before.
func (m *Mailbox) newUIDValidityLocked(now time.Time) uint32 {
	v := m.store.nextUIDValidity(now)
	if v == m.uidValidity {
		v++
	}
	return v
}

func (m *Mailbox) buildSnapshotLocked(ul *Uidlist, ents map[string]*entry, kw []string, stamp Stamp) *Snapshot {
	snap := &Snapshot{Stamp: stamp, Keywords: kw}
	if ul != nil {
		snap.UIDValidity, snap.UIDNext = ul.UIDValidity, ul.NextUID
		snap.Messages = make([]Message, 0, len(ents))
		for _, r := range ul.Records {
			e, ok := ents[r.Unique()]
			if !ok {
				continue
			}
			snap.Messages = append(snap.Messages, messageOf(r.UID, e, kw))
		}
	}
	m.view = make(map[uint32]Message, len(snap.Messages))
	for _, msg := range snap.Messages {
		m.view[msg.UID] = msg
	}
	return snap
}

func messageOf(uid uint32, e *entry, kw []string) Message {
	msg := Message{UID: uid, File: e.file, InNew: e.inNew, Name: e.name, Flags: e.name.Flags}
	for i := 0; i < len(e.name.Keywords); i++ {
		idx := int(e.name.Keywords[i] - 'a')
		if idx < len(kw) && kw[idx] != "" {
			msg.Keywords = append(msg.Keywords, kw[idx])
		}
	}
	return msg
}

// curNameForNew is the name a file from new/ gets in cur/.
func curNameForNew(n Name) string {
	if n.HasInfo && strings.HasPrefix(n.Info, "2,") {
		return n.String()
	}
	return n.WithFlags(0, "")
}

// moveNewLocked renames the snapshot's new/ files into cur/ and updates
// the snapshot (it is not yet shared).
func (m *Mailbox) moveNewLocked(ctx context.Context, snap *Snapshot) error {
	lost := false
	for i := range snap.Messages {
		msg := &snap.Messages[i]
		if !msg.InNew {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("maildir: moving new mail: %w", err)
		}
		target := curNameForNew(msg.Name)
		err := renameFile(filepath.Join(m.dir, "new", msg.File), filepath.Join(m.dir, "cur", target))
		switch {
		case err == nil:
			m.store.opt.Listings.forget(m.dir)
			m.store.op(OpRename)
			snap.MovedFromNew = append(snap.MovedFromNew, msg.UID)
			n, _ := ParseName(target)
			msg.File, msg.InNew, msg.Name = target, false, n
			m.view[msg.UID] = *msg
		case isNotExist(err) || isStale(err):
			lost = true // another node moved or expunged it; look again
		default:
			return fmt.Errorf("maildir: move %s to cur/: %w", msg.File, err)
		}
	}
	if lost {
		// Learn the new names of what others moved.
		ents, _, err := m.listLocked(m.dirTimesLocked())
		if err != nil {
			return err
		}
		if err := m.recheckMissingLocked(m.ul, ents); err != nil {
			return err
		}
		msgs := snap.Messages[:0]
		for _, msg := range snap.Messages {
			e, ok := ents[msg.Name.Unique]
			if !ok {
				delete(m.view, msg.UID)
				continue
			}
			msg = messageOf(msg.UID, e, snap.Keywords)
			m.view[msg.UID] = msg
			msgs = append(msgs, msg)
		}
		snap.Messages = msgs
	}
	return nil
}

// Stamp returns the change stamp of the maildir (three stats, no reads, no
// listing). Compare it with Snapshot.Stamp to answer STATUS cheaply. On NFS
// the attributes may be cached for a few seconds (rule 5): use it to skip
// work, not to decide that mail is absent.
func (m *Mailbox) Stamp(ctx context.Context) (Stamp, error) {
	if err := ctx.Err(); err != nil {
		return Stamp{}, err
	}
	if _, err := m.store.stat(m.dir); err != nil {
		if isNotExist(err) {
			return Stamp{}, fmt.Errorf("%w: %s", ErrNoMailbox, m.name)
		}
		return Stamp{}, fmt.Errorf("maildir: stat %s: %w", m.dir, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stampLocked(), nil
}

// Equal reports whether two stamps are the same.
func (s Stamp) Equal(o Stamp) bool {
	return s.NewMtime.Equal(o.NewMtime) && s.CurMtime.Equal(o.CurMtime) &&
		s.UidlistMtime.Equal(o.UidlistMtime) && s.UidlistSize == o.UidlistSize && s.UidlistIno == o.UidlistIno
}

// ensureViewLocked syncs once if the handle has never synced.
func (m *Mailbox) ensureViewLocked(ctx context.Context) error {
	if m.view != nil {
		return nil
	}
	_, _, err := m.syncLocked(ctx, SyncOptions{}, nil)
	return err
}
