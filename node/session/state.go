package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/nfsimap/nfsimap/localindex"
	"github.com/nfsimap/nfsimap/node/maildir"
	"github.com/nfsimap/nfsimap/node/sortthread"
)

// registry holds the in-memory state of every mailbox that a session of
// this node has selected, keyed by maildir path, so that all sessions of a
// node that select one mailbox share one state and see each other's
// changes at once. Entries are reference counted and dropped (their poller
// stopped) when the last session leaves.
//
// \Recent lives here too, per node: a message is recent in the first
// session of this node that sees it. Sessions of the same user on other
// nodes keep their own count, so in a cluster a message can be \Recent in
// one session per node (RFC 3501 allows no better without shared state).
type registry struct {
	logger *slog.Logger

	boxesMu sync.Mutex // guards boxes and every sharedBox.refs
	boxes   map[string]*sharedBox
}

func newRegistry(logger *slog.Logger) *registry {
	return &registry{logger: logger, boxes: make(map[string]*sharedBox)}
}

// sharedBox is the node-wide state of one selected maildir.
type sharedBox struct {
	reg  *registry
	path string
	// mbox is the spool handle that every session of this node uses for
	// this maildir. maildir.Mailbox serializes its own operations.
	mbox         *maildir.Mailbox
	pollInterval time.Duration
	logger       *slog.Logger

	// index is the node's local index (nil: none); user and name key the
	// mailbox in it.
	index      *localindex.Index
	user, name string

	// idxMu guards idx, mem and idxErrLogged. idx is the mailbox's index
	// in memory (one per node for a selected mailbox, shared by its
	// sessions), nil without a local index; mem then keeps the parsed
	// messages in memory only. Never held during spool I/O.
	idxMu        sync.Mutex
	idx          *localindex.Mailbox
	mem          map[uint32]localindex.Record
	idxErrLogged bool
	// idxTicket is the ticket of the last change applied to idx (older
	// syncs that finish late are not applied); idxState is the spool
	// state idx's records equal (zero: unknown).
	idxTicket uint64
	idxState  localindex.SpoolState

	refs int // guarded by reg.boxesMu

	// sortKeys remembers SORT and THREAD keys computed from this
	// mailbox's header values, for the sessions that sort it again.
	sortKeys *sortthread.Keys

	// flagsMu serializes this node's flag changes (STORE, the implicit
	// \Seen of FETCH) together with their patch of the snapshot, so the
	// patches land in the order of the renames. The maildir handle
	// serializes the renames anyway; only flag writers take it.
	flagsMu sync.Mutex

	// ready is closed when the first Sync finished (err holds its error).
	ready   chan struct{}
	initErr error

	stateMu sync.Mutex // guards the fields below; never held during spool I/O
	snap    *maildir.Snapshot
	// ticket orders spool reads and local changes: installed is the
	// ticket of the newest thing installed (spool read or local change).
	ticket, installed uint64
	lastSync          time.Time
	version           uint64 // bumped on every visible change
	watchers          map[chan struct{}]struct{}
	recentFloor       uint32              // UIDs above it have not been claimed as \Recent
	recentInitial     map[uint32]struct{} // messages in new/ at first sight, not yet claimed
	meta              map[uint32]msgMeta  // sizes (from the name) and dates of unparsed messages, by UID
	// spool is the spool state the installed snapshot is known to equal
	// (zero: unknown, after this node changed the maildir itself).
	spool localindex.SpoolState

	// synced is the ticket of the newest spool read installed. A spool
	// read is installed when its ticket is above synced, even when a local
	// change came after it took its ticket: the local changes since then
	// (local, in ticket order) are applied to it again. Dropping it
	// instead would lose what it found (the message a session of this
	// node just appended, which its next command must see).
	synced uint64
	local  []localChange

	pollCtx  context.Context    // the poller's lifetime
	stopPoll context.CancelFunc // ends pollCtx (release of the last reference)
	pollDone chan struct{}      // closed when the poller returned
}

// localChange is a change this node made to the spool and installed
// without reading the spool (patch, removeUIDs).
type localChange struct {
	ticket   uint64
	changed  []maildir.Message // messages with new flags
	keywords []string          // the mailbox's new keywords; nil: unchanged
	removed  []uint32          // UIDs expunged or moved away
}

type msgMeta struct {
	size int64 // RFC822.SIZE
	date time.Time
}

// boxOptions say how a registry entry is made.
type boxOptions struct {
	pollInterval time.Duration
	moveNew      bool              // a read-write SELECT: move new/ to cur/
	index        *localindex.Index // nil: no local index
	user         string
	// pre, when not nil, is the spool state taken (revalidated) at
	// takenAt, just before the caller opened the mailbox.
	pre     *localindex.SpoolState
	takenAt time.Time
}

// acquire returns the shared state of the maildir of mbox, creating it on
// first use (from the local index when it matches the spool, else with a
// Sync) and starting its poller; fresh tells that this call made it. The
// caller must call release once.
func (r *registry) acquire(ctx context.Context, mbox *maildir.Mailbox, opt boxOptions) (b *sharedBox, fresh bool, err error) {
	path := mbox.Path()
	r.boxesMu.Lock()
	b, ok := r.boxes[path]
	if ok {
		b.refs++
		r.boxesMu.Unlock()
		select {
		case <-b.ready:
		case <-ctx.Done():
			r.release(b)
			return nil, false, ctx.Err()
		}
		if b.initErr != nil {
			r.release(b)
			return nil, false, b.initErr
		}
		return b, false, nil
	}
	b = &sharedBox{
		sortKeys:      sortthread.NewKeys(),
		reg:           r,
		path:          path,
		mbox:          mbox,
		pollInterval:  opt.pollInterval,
		logger:        r.logger.With("maildir", path),
		index:         opt.index,
		user:          opt.user,
		name:          mbox.Name(),
		refs:          1,
		ready:         make(chan struct{}),
		watchers:      make(map[chan struct{}]struct{}),
		recentInitial: make(map[uint32]struct{}),
		meta:          make(map[uint32]msgMeta),
		pollDone:      make(chan struct{}),
	}
	b.pollCtx, b.stopPoll = context.WithCancel(context.Background())
	r.boxes[path] = b
	r.boxesMu.Unlock()

	// The first read runs outside the registry lock; later arrivals wait
	// on ready.
	snap, err := b.open(ctx, opt)
	if err == nil {
		b.stateMu.Lock()
		for _, m := range snap.Messages {
			if m.InNew {
				b.recentInitial[m.UID] = struct{}{}
			}
		}
		for _, uid := range snap.MovedFromNew {
			b.recentInitial[uid] = struct{}{}
		}
		if n := len(snap.Messages); n > 0 {
			b.recentFloor = snap.Messages[n-1].UID
		}
		b.stateMu.Unlock()
		go b.poll()
	} else {
		close(b.pollDone)
	}
	b.initErr = err
	close(b.ready)
	if err != nil {
		r.release(b)
		return nil, false, err
	}
	return b, true, nil
}

// open installs the first snapshot of a new registry entry. When the
// local index was saved at exactly the spool's current state (new/, cur/
// and the uidlist revalidated: three GETATTRs) the snapshot is built from
// it and the spool is not listed; a read-write SELECT with mail in new/
// still syncs, to move it to cur/.
func (b *sharedBox) open(ctx context.Context, opt boxOptions) (*maildir.Snapshot, error) {
	moveNew := opt.moveNew
	var idx *localindex.Mailbox
	if b.index != nil {
		var err error
		idx, err = b.index.LoadMailbox(b.user, b.name)
		if err != nil {
			if !errors.Is(err, localindex.ErrNotFound) {
				b.logger.Info("local index unusable, reading the spool", "err", err)
			}
			idx = nil
		}
	}
	if idx != nil {
		takenAt, st, err := opt.takenAt, localindex.SpoolState{}, error(nil)
		if opt.pre != nil {
			st = *opt.pre
		} else {
			takenAt = time.Now()
			st, err = statSpool(b.path, true)
		}
		if err == nil && !idx.Spool().IsZero() && idx.Spool().Equal(settled(st, takenAt)) {
			if snap, ok := snapshotFromIndex(idx); ok && !(moveNew && hasNew(snap)) {
				b.stateMu.Lock()
				b.ticket++
				b.installed = b.ticket
				b.synced, b.local = b.ticket, nil
				b.idxMu.Lock()
				b.idx, b.idxTicket, b.idxState = idx, b.ticket, idx.Spool()
				b.idxMu.Unlock()
				b.snap = snap
				b.spool = idx.Spool()
				b.lastSync = time.Now()
				b.stateMu.Unlock()
				return snap, nil
			}
		}
	}
	b.idxMu.Lock()
	b.idx = idx
	b.idxMu.Unlock()
	return b.syncSpool(ctx, maildir.SyncOptions{MoveNew: moveNew})
}

func hasNew(snap *maildir.Snapshot) bool {
	return slices.ContainsFunc(snap.Messages, func(m maildir.Message) bool { return m.InNew })
}

// snapshotFromIndex builds a snapshot from the index records; false when
// a record cannot be used (then the spool is read).
func snapshotFromIndex(idx *localindex.Mailbox) (*maildir.Snapshot, bool) {
	recs := idx.Records()
	snap := &maildir.Snapshot{
		UIDValidity: idx.UIDValidity(),
		UIDNext:     idx.UIDNext(),
		Keywords:    idx.Keywords(),
		Messages:    make([]maildir.Message, 0, len(recs)),
	}
	if snap.UIDValidity == 0 {
		return nil, false
	}
	for i := range recs {
		m, err := messageFromRecord(&recs[i])
		if err != nil {
			return nil, false
		}
		snap.Messages = append(snap.Messages, m)
	}
	return snap, true
}

// release drops one reference; the last one stops the poller.
func (r *registry) release(b *sharedBox) {
	r.boxesMu.Lock()
	b.refs--
	last := b.refs == 0
	if last && r.boxes[b.path] == b {
		delete(r.boxes, b.path)
	}
	r.boxesMu.Unlock()
	if last {
		b.stopPoll()
		<-b.pollDone
		b.closeIndex()
	}
}

// current returns the installed snapshot and its version.
func (b *sharedBox) current() (*maildir.Snapshot, uint64) {
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	return b.snap, b.version
}

// watch registers a wake-up channel (buffered 1) that gets a value after
// every visible change. unwatch removes it.
func (b *sharedBox) watch(ch chan struct{}) {
	b.stateMu.Lock()
	b.watchers[ch] = struct{}{}
	b.stateMu.Unlock()
}

func (b *sharedBox) unwatch(ch chan struct{}) {
	b.stateMu.Lock()
	delete(b.watchers, ch)
	b.stateMu.Unlock()
}

// notifyLocked wakes every watcher without blocking (wake-ups coalesce).
func (b *sharedBox) notifyLocked() {
	for ch := range b.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (b *sharedBox) takeTicket() uint64 {
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	b.ticket++
	return b.ticket
}

// syncSpool reads the maildir and installs the result unless something
// newer was installed meanwhile. It returns the snapshot now installed.
// The spool state is taken (revalidated) before the Sync lists the
// maildir, so the snapshot is at least as new as the state it is stored
// with; the local index is brought up to the snapshot and saved.
func (b *sharedBox) syncSpool(ctx context.Context, opt maildir.SyncOptions) (*maildir.Snapshot, error) {
	t := b.takeTicket()
	takenAt := time.Now()
	pre, preErr := statSpool(b.path, true)
	snap, err := b.mbox.Sync(ctx, opt)
	if err != nil {
		if errors.Is(err, maildir.ErrNoMailbox) {
			// Deleted (or renamed away) under its sessions: they see
			// every message expunged.
			b.installGone(t)
		}
		return nil, fmt.Errorf("sync %s: %w", b.path, err)
	}
	var state localindex.SpoolState
	if preErr == nil {
		state = afterSync(pre, snap, takenAt)
	}
	b.stateMu.Lock()
	b.lastSync = time.Now()
	installed := false
	idxTicket := t
	if t > b.synced {
		// No newer spool read was installed. The local changes installed
		// after this read took its ticket may be missing from it (it
		// listed the maildir before their renames): apply them again;
		// the spool state stays unknown.
		b.local = slices.DeleteFunc(b.local, func(c localChange) bool { return c.ticket <= t })
		if len(b.local) > 0 {
			snap = applyLocal(snap, b.local)
			state = localindex.SpoolState{}
			idxTicket = b.installed
		}
		b.synced = t
		b.installed = max(b.installed, t)
		installed = true
		b.spool = state
		if b.snap == nil || snapshotChanged(b.snap, snap) {
			b.snap = snap
			b.version++
			b.notifyLocked()
			if len(b.meta) > len(snap.Messages) {
				// Drop the cached sizes of messages expunged elsewhere.
				for uid := range b.meta {
					if _, ok := snap.Lookup(uid); !ok {
						delete(b.meta, uid)
					}
				}
			}
		} else {
			// Same messages and flags: keep the old snapshot (sessions
			// compare by version) but remember the newer stamp.
			cp := *b.snap
			cp.Stamp = snap.Stamp
			b.snap = &cp
		}
	}
	cur := b.snap
	b.stateMu.Unlock()
	if installed {
		b.indexSnapshot(idxTicket, snap, state)
	}
	return cur, nil
}

// applyLocal returns snap with the local changes applied: changed
// messages replace those with their UIDs, removed ones are left out. snap
// itself is not modified.
func applyLocal(snap *maildir.Snapshot, local []localChange) *maildir.Snapshot {
	cp := *snap
	cp.Messages = slices.Clone(snap.Messages)
	for _, c := range local {
		if c.keywords != nil {
			cp.Keywords = c.keywords
		}
		for _, m := range c.changed {
			if i, ok := slices.BinarySearchFunc(cp.Messages, m.UID, func(x maildir.Message, uid uint32) int {
				return cmpUint32(x.UID, uid)
			}); ok {
				cp.Messages[i] = m
			}
		}
		if len(c.removed) > 0 {
			cp.Messages = slices.DeleteFunc(cp.Messages, func(m maildir.Message) bool {
				return slices.Contains(c.removed, m.UID)
			})
		}
	}
	return &cp
}

// installGone installs an empty snapshot (same UIDVALIDITY) for a
// mailbox that no longer exists.
func (b *sharedBox) installGone(t uint64) {
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	if t <= b.synced || b.snap == nil || len(b.snap.Messages) == 0 {
		return
	}
	b.installed = max(b.installed, t)
	b.synced, b.local = t, nil
	cp := *b.snap
	cp.Messages = nil
	b.snap = &cp
	b.version++
	b.notifyLocked()
}

// sinceSync is how long ago the spool was last read.
func (b *sharedBox) sinceSync() time.Duration {
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	return time.Since(b.lastSync)
}

// patch installs messages changed by this node (STORE results): each
// replaces the message with its UID in the installed snapshot. keywords,
// when not nil, is the mailbox's new keyword list.
func (b *sharedBox) patch(changed []maildir.Message, keywords []string) {
	if len(changed) == 0 {
		return
	}
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	b.ticket++
	b.installed = b.ticket
	cp := *b.snap
	cp.Messages = slices.Clone(b.snap.Messages)
	n := 0
	if keywords != nil && !slices.Equal(keywords, cp.Keywords) {
		cp.Keywords = keywords
		n++
	}
	for _, m := range changed {
		i, ok := slices.BinarySearchFunc(cp.Messages, m.UID, func(x maildir.Message, uid uint32) int {
			return cmpUint32(x.UID, uid)
		})
		if ok {
			cp.Messages[i] = m
			n++
		}
	}
	if n > 0 {
		b.snap = &cp
		b.version++
		b.notifyLocked()
		b.spool = localindex.SpoolState{} // we changed the spool
		b.local = append(b.local, localChange{ticket: b.ticket, changed: slices.Clone(changed), keywords: keywords})
		b.indexFlags(b.ticket, changed, keywords)
	}
}

// removeUIDs installs the removal of expunged messages.
func (b *sharedBox) removeUIDs(uids []uint32) {
	if len(uids) == 0 {
		return
	}
	gone := make(map[uint32]bool, len(uids))
	for _, u := range uids {
		gone[u] = true
	}
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	b.ticket++
	b.installed = b.ticket
	cp := *b.snap
	cp.Messages = make([]maildir.Message, 0, len(b.snap.Messages))
	for _, m := range b.snap.Messages {
		if !gone[m.UID] {
			cp.Messages = append(cp.Messages, m)
		} else {
			delete(b.meta, m.UID)
		}
	}
	if len(cp.Messages) != len(b.snap.Messages) {
		b.snap = &cp
		b.version++
		b.notifyLocked()
		b.spool = localindex.SpoolState{} // we changed the spool
		b.local = append(b.local, localChange{ticket: b.ticket, removed: slices.Clone(uids)})
		b.indexRemove(b.ticket, uids)
	}
}

// claimRecent decides which of uids (new to a session, ascending) are
// \Recent for that session: those no session of this node has seen yet.
func (b *sharedBox) claimRecent(uids []uint32, readOnly bool) map[uint32]bool {
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	var out map[uint32]bool
	for _, u := range uids {
		_, initial := b.recentInitial[u]
		if !initial && u <= b.recentFloor {
			continue
		}
		if out == nil {
			out = make(map[uint32]bool)
		}
		out[u] = true
		if readOnly {
			// EXAMINE shows \Recent but does not take it from the
			// read-write sessions that come later (Dovecot does the same).
			continue
		}
		delete(b.recentInitial, u)
		if u > b.recentFloor {
			b.recentFloor = u
		}
	}
	return out
}

func (b *sharedBox) getMeta(uid uint32) (msgMeta, bool) {
	if r, ok := b.parsed(uid); ok {
		return msgMeta{size: r.Size, date: r.InternalDate}, true
	}
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	m, ok := b.meta[uid]
	return m, ok
}

func (b *sharedBox) setMeta(uid uint32, m msgMeta) {
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	b.meta[uid] = m
}

// openMessage opens a message file. It first tries the name the
// snapshot has, without the maildir handle (so reads of one session do
// not wait for another session's spool work); when that name is gone (the
// message was renamed or expunged by someone else) the handle looks it up
// again after a rescan.
func (b *sharedBox) openMessage(ctx context.Context, m maildir.Message) (*os.File, error) {
	if m.File != "" {
		f, err := b.mbox.OpenFile(m)
		if err == nil {
			return f, nil
		}
	}
	f, _, err := b.mbox.Open(ctx, m.UID)
	if err != nil {
		return nil, fmt.Errorf("open message %d: %w", m.UID, err)
	}
	return f, nil
}

// readMessage returns a message's content with CRLF line ends and its
// metadata. The first read of a message also parses it and keeps the
// parse (sizes, date, ENVELOPE, BODYSTRUCTURE, header fields) in the
// index. A read that fails with ESTALE (another node removed the file
// while we read it) is tried once more through the handle.
func (b *sharedBox) readMessage(ctx context.Context, m maildir.Message) ([]byte, msgMeta, error) {
	content, meta, err := b.readMessageOnce(ctx, m)
	// ESTALE (NFS: the file was replaced or removed through another
	// client) gets a bounded retry through the handle, which rescans.
	for try := 0; try < 3 && err != nil && errors.Is(err, syscall.ESTALE); try++ {
		m.File = "" // go through the handle
		content, meta, err = b.readMessageOnce(ctx, m)
	}
	return content, meta, err
}

func (b *sharedBox) readMessageOnce(ctx context.Context, m maildir.Message) ([]byte, msgMeta, error) {
	f, err := b.openMessage(ctx, m)
	if err != nil {
		return nil, msgMeta{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, msgMeta{}, fmt.Errorf("stat message %d: %w", m.UID, err)
	}
	raw, err := io.ReadAll(f)
	if err != nil {
		return nil, msgMeta{}, fmt.Errorf("read message %d: %w", m.UID, err)
	}
	content := toCRLF(raw)
	meta := msgMeta{size: int64(len(content)), date: st.ModTime()}
	if _, ok := b.parsed(m.UID); !ok {
		b.rememberParsed(&m, parseMessage(content, int64(len(raw)), meta.date))
	}
	return content, meta, nil
}

// messageMeta returns size and internal date: from the index, else from
// the file name's ",W=" and a stat, else by reading the file.
func (b *sharedBox) messageMeta(ctx context.Context, m maildir.Message) (msgMeta, error) {
	if meta, ok := b.getMeta(m.UID); ok {
		return meta, nil
	}
	if m.Name.VSize >= 0 {
		f, err := b.openMessage(ctx, m)
		if err != nil {
			return msgMeta{}, err
		}
		st, err := f.Stat()
		f.Close()
		if errors.Is(err, syscall.ESTALE) {
			// Read it instead: readMessage retries ESTALE.
			_, meta, err := b.readMessage(ctx, m)
			return meta, err
		}
		if err != nil {
			return msgMeta{}, fmt.Errorf("stat message %d: %w", m.UID, err)
		}
		meta := msgMeta{size: m.Name.VSize, date: st.ModTime()}
		b.setMeta(m.UID, meta)
		return meta, nil
	}
	_, meta, err := b.readMessage(ctx, m)
	return meta, err
}

// poll is the poller goroutine: while any session has the mailbox
// selected it notices changes made by other nodes and MTAs. Owner: the
// registry entry; stopped by release.
func (b *sharedBox) poll() {
	defer close(b.pollDone)
	var lastErr string
	t := time.NewTicker(b.pollInterval)
	defer t.Stop()
	for {
		select {
		case <-b.pollCtx.Done():
			return
		case <-t.C:
		}
		if b.sinceSync() < b.pollInterval/2 {
			continue // a session read the spool just now
		}
		ctx, cancel := context.WithTimeout(b.pollCtx, 2*b.pollInterval+30*time.Second)
		changed, err := b.changedOnSpool(ctx)
		if err == nil && changed {
			_, err = b.syncSpool(ctx, maildir.SyncOptions{})
		}
		cancel()
		switch {
		case err == nil:
			lastErr = ""
		case errors.Is(err, context.Canceled):
		case err.Error() != lastErr:
			// Logged once while it repeats (a mailbox deleted by
			// another node fails every poll until it is closed).
			lastErr = err.Error()
			b.logger.Warn("mailbox poll failed", "err", err)
		}
	}
}

// changedOnSpool tells whether the maildir may have changed since the
// installed snapshot: new/, cur/ and the uidlist are stat'ed with forced
// revalidation (three GETATTRs on NFS, see statSpool) and compared with
// the state the snapshot is known to equal.
func (b *sharedBox) changedOnSpool(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return true, err
	}
	st, err := statSpool(b.path, true)
	if err != nil {
		return true, nil // let Sync find out what is wrong
	}
	b.stateMu.Lock()
	known := b.spool
	b.stateMu.Unlock()
	return known.IsZero() || !known.Equal(st), nil
}

// changedSince tells whether the installed snapshot may differ from the
// spool at state st (nil: take it now).
func (b *sharedBox) changedSince(st *localindex.SpoolState) bool {
	if st == nil {
		changed, _ := b.changedOnSpool(context.Background())
		return changed
	}
	b.stateMu.Lock()
	known := b.spool
	b.stateMu.Unlock()
	return known.IsZero() || !known.Equal(*st)
}

// changedDirs tells whether new/ or cur/ may have changed since the
// installed snapshot (STATUS of a selected mailbox: two GETATTRs).
func (b *sharedBox) changedDirs() bool {
	st, err := statSpool(b.path, false)
	if err != nil {
		return true
	}
	b.stateMu.Lock()
	known := b.spool
	b.stateMu.Unlock()
	return !sameDirs(known, st)
}

// snapshotChanged reports a visible difference: UID validity, messages,
// flags or keywords.
func snapshotChanged(a, b *maildir.Snapshot) bool {
	if a.UIDValidity != b.UIDValidity || a.UIDNext != b.UIDNext || len(a.Messages) != len(b.Messages) {
		return true
	}
	for i := range a.Messages {
		x, y := &a.Messages[i], &b.Messages[i]
		if x.UID != y.UID || x.Flags != y.Flags || !slices.Equal(x.Keywords, y.Keywords) || x.File != y.File {
			return true
		}
	}
	return false
}

func cmpUint32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// lookup returns the shared state of a maildir if a session of this node
// has it selected (with a reference the caller must release), else nil.
func (r *registry) lookup(path string) *sharedBox {
	r.boxesMu.Lock()
	b, ok := r.boxes[path]
	if ok {
		b.refs++
	}
	r.boxesMu.Unlock()
	if !ok {
		return nil
	}
	<-b.ready
	if b.initErr != nil {
		r.release(b)
		return nil
	}
	return b
}

// countUnclaimed counts the messages of snap that would be \Recent for the
// next session of this node to see them (STATUS RECENT).
func (b *sharedBox) countUnclaimed(snap *maildir.Snapshot) uint32 {
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	var n uint32
	for _, m := range snap.Messages {
		if _, ok := b.recentInitial[m.UID]; ok || m.UID > b.recentFloor {
			n++
		}
	}
	return n
}
