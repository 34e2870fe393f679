package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/nfsimap/nfsimap/node/maildir"
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

	refs int // guarded by reg.boxesMu

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
	// ticket orders spool reads and local changes: a result is installed
	// only when it is newer than what is installed.
	ticket, installed uint64
	lastSync          time.Time
	version           uint64 // bumped on every visible change
	watchers          map[chan struct{}]struct{}
	recentFloor       uint32              // UIDs above it have not been claimed as \Recent
	recentInitial     map[uint32]struct{} // messages in new/ at first sight, not yet claimed
	meta              map[uint32]msgMeta  // cached sizes and dates, by UID (a UID's content never changes)

	pollCtx  context.Context    // the poller's lifetime
	stopPoll context.CancelFunc // ends pollCtx (release of the last reference)
	pollDone chan struct{}      // closed when the poller returned
}

type msgMeta struct {
	size int64 // RFC822.SIZE
	date time.Time
}

// acquire returns the shared state of the maildir of mbox, creating it
// (with its first Sync and its poller) on first use; fresh tells that this
// call made it (its snapshot is new). The caller must call release once.
func (r *registry) acquire(ctx context.Context, mbox *maildir.Mailbox, pollInterval time.Duration, moveNew bool) (b *sharedBox, fresh bool, err error) {
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
		reg:           r,
		path:          path,
		mbox:          mbox,
		pollInterval:  pollInterval,
		logger:        r.logger.With("maildir", path),
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

	// The first Sync runs outside the registry lock; later arrivals wait
	// on ready.
	flushAttrCache(path)
	snap, err := b.syncSpool(ctx, maildir.SyncOptions{MoveNew: moveNew})
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
func (b *sharedBox) syncSpool(ctx context.Context, opt maildir.SyncOptions) (*maildir.Snapshot, error) {
	t := b.takeTicket()
	snap, err := b.mbox.Sync(ctx, opt)
	if err != nil {
		if errors.Is(err, maildir.ErrNoMailbox) {
			// Deleted (or renamed away) under its sessions: they see
			// every message expunged.
			b.installGone(t)
		}
		return nil, fmt.Errorf("sync %s: %w", b.path, err)
	}
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	b.lastSync = time.Now()
	if t > b.installed {
		b.installed = t
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
	return b.snap, nil
}

// installGone installs an empty snapshot (same UIDVALIDITY) for a
// mailbox that no longer exists.
func (b *sharedBox) installGone(t uint64) {
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	if t <= b.installed || b.snap == nil || len(b.snap.Messages) == 0 {
		return
	}
	b.installed = t
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
	sub := "cur"
	if m.InNew {
		sub = "new"
	}
	if m.File != "" {
		f, err := os.Open(filepath.Join(b.path, sub, m.File))
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
// metadata (which it caches). A read that fails with ESTALE (another node
// removed the file while we read it) is tried once more through the
// handle.
func (b *sharedBox) readMessage(ctx context.Context, m maildir.Message) ([]byte, msgMeta, error) {
	content, meta, err := b.readMessageOnce(ctx, m)
	if err != nil && errors.Is(err, syscall.ESTALE) {
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
	b.setMeta(m.UID, meta)
	return content, meta, nil
}

// messageMeta returns size and internal date: from the cache, else from
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
// installed snapshot. It first flushes the NFS client's cached attributes
// of new/, cur/ and the uidlist with Dovecot's chown(path, -1, -1) trick (a
// SETATTR that changes nothing but returns fresh attributes, and makes the
// client drop a cached directory listing whose mtime changed), so that an
// unchanged stamp can be trusted (DESIGN rule 5). Opening a directory is
// not enough: the NFS-like test mount keeps both its attributes and its
// listing through an open.
func (b *sharedBox) changedOnSpool(ctx context.Context) (bool, error) {
	flushAttrCache(b.path)
	st, err := b.mbox.Stamp(ctx)
	if err != nil {
		return true, nil // let Sync find out what is wrong
	}
	snap, _ := b.current()
	if snap == nil || !st.Equal(snap.Stamp) {
		return true, nil
	}
	return stampIsRecent(st, time.Now()), nil
}

// stampIsRecent: with coarse (whole-second) mtimes a file added in the
// same second as the last change leaves the stamp as it was, so a stamp
// that changed less than two seconds ago cannot say "nothing changed".
func stampIsRecent(st maildir.Stamp, now time.Time) bool {
	for _, t := range []time.Time{st.NewMtime, st.CurMtime, st.UidlistMtime} {
		if now.Sub(t) < 2*time.Second {
			return true
		}
	}
	return false
}

// flushAttrCache makes the NFS client fetch fresh attributes (and drop a
// stale cached listing) of a maildir's new/, cur/ and uidlist. Errors do
// not matter here: a missing file shows in the stamp or in the Sync.
func flushAttrCache(maildirPath string) {
	for _, p := range []string{"new", "cur", "dovecot-uidlist"} {
		_ = os.Chown(filepath.Join(maildirPath, p), -1, -1)
	}
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
