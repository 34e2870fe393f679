package localindex

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Index is one node's local index: a root directory with a directory per
// user. It is safe for concurrent use by many sessions. Open loads nothing:
// a user's files are read only when a session asks for them.
type Index struct {
	cfg    Config
	logger *slog.Logger

	// fileLocks serialise, per mailbox (by hash), the check-then-write of
	// Save and the removal of corrupt files, between sessions of this
	// node. Loads take no lock.
	fileLocks [64]sync.Mutex

	// usersMu guards users.
	usersMu sync.Mutex
	users   map[string]*userState // by user directory name

	// degradedUntil is the UnixNano until which writes are skipped; 0 when
	// writes work.
	degradedUntil atomic.Int64
	degraded      atomic.Bool

	// evictKick wakes Run early (a full disk); buffered 1, never blocks.
	evictKick chan struct{}

	// testWriteErr, when set by a test, is asked before every write and
	// its error used as the write's outcome.
	testWriteErr func(path string) error

	st struct {
		summaryHits, summaryMisses, mailboxHits, mailboxMisses atomic.Int64
		corrupt, writes, bytesWritten, logAppends, compactions atomic.Int64
		writeErrors, skipped                                   atomic.Int64
		evictedUsers, evictedBytes, evictRuns                  atomic.Int64
	}
}

// userState is what the index keeps in memory about a user it served.
type userState struct {
	lastUse     time.Time
	stampWrites time.Time // when the stamp file was last written
	active      int       // open Mailboxes
}

// Open prepares an index rooted at cfg.Dir (created when missing). It reads
// no user's files. logger nil discards.
func Open(cfg Config, logger *slog.Logger) (*Index, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := os.MkdirAll(cfg.Dir, cfg.DirMode); err != nil {
		return nil, fmt.Errorf("localindex: create %s: %w", cfg.Dir, err)
	}
	return &Index{
		cfg:       cfg,
		logger:    logger,
		users:     make(map[string]*userState),
		evictKick: make(chan struct{}, 1),
	}, nil
}

// Stats returns the counters.
func (x *Index) Stats() Stats {
	return Stats{
		SummaryHits:   x.st.summaryHits.Load(),
		SummaryMisses: x.st.summaryMisses.Load(),
		MailboxHits:   x.st.mailboxHits.Load(),
		MailboxMisses: x.st.mailboxMisses.Load(),
		Corrupt:       x.st.corrupt.Load(),
		Writes:        x.st.writes.Load(),
		BytesWritten:  x.st.bytesWritten.Load(),
		LogAppends:    x.st.logAppends.Load(),
		Compactions:   x.st.compactions.Load(),
		WriteErrors:   x.st.writeErrors.Load(),
		Skipped:       x.st.skipped.Load(),
		Degraded:      x.degraded.Load(),
		EvictedUsers:  x.st.evictedUsers.Load(),
		EvictedBytes:  x.st.evictedBytes.Load(),
		EvictRuns:     x.st.evictRuns.Load(),
	}
}

// Degraded reports whether the last write failed: the node serves from the
// spool alone until a write succeeds again.
func (x *Index) Degraded() bool { return x.degraded.Load() }

// userDirName is the directory of a user below the root: a fan-out level of
// 256 and the hash of the name, so that any user name (with '/', "..", or
// very long) is a safe path. The name itself is stored inside every file
// and checked on load.
func userDirName(user string) string {
	h := xxhash.Sum64String(user)
	return fmt.Sprintf("%02x/%016x", h>>56, h)
}

func (x *Index) userDir(user string) string {
	return filepath.Join(x.cfg.Dir, userDirName(user))
}

// mailboxBase is the file name stem of a mailbox's files.
func mailboxBase(mailbox string) string {
	return strconv.FormatUint(xxhash.Sum64String(mailbox), 16)
}

func (x *Index) lockFor(user, mailbox string) *sync.Mutex {
	h := xxhash.Sum64String(user) ^ xxhash.Sum64String(mailbox)
	return &x.fileLocks[h%uint64(len(x.fileLocks))]
}

// suspended reports whether writes are being skipped after an error.
func (x *Index) suspended() bool {
	until := x.degradedUntil.Load()
	return until != 0 && x.cfg.Now().UnixNano() < until
}

// writeFailed records a failed write: counted, logged, writes suspended.
func (x *Index) writeFailed(path string, err error) error {
	x.st.writeErrors.Add(1)
	x.degradedUntil.Store(x.cfg.Now().Add(x.cfg.DegradedRetry).UnixNano())
	if !x.degraded.Swap(true) {
		x.logger.Warn("local index write failed; serving from the spool alone", "path", path, "err", err)
	} else {
		x.logger.Debug("local index write failed", "path", path, "err", err)
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		select {
		case x.evictKick <- struct{}{}:
		default:
		}
	}
	return fmt.Errorf("localindex: write %s: %w", path, err)
}

// writeOK records a successful write.
func (x *Index) writeOK(n int) {
	x.st.writes.Add(1)
	x.st.bytesWritten.Add(int64(n))
	if x.degraded.Load() {
		x.degradedUntil.Store(0)
		if x.degraded.Swap(false) {
			x.logger.Info("local index writes work again")
		}
	}
}

// beginWrite is asked before every write: ErrDegraded while suspended, or
// the test hook's error.
func (x *Index) beginWrite(path string) error {
	if x.suspended() {
		x.st.skipped.Add(1)
		return ErrDegraded
	}
	if x.testWriteErr != nil {
		if err := x.testWriteErr(path); err != nil {
			return x.writeFailed(path, err)
		}
	}
	return nil
}

// writeFile writes data to dir/name through a temporary file renamed into
// place, creating dir when missing (the index may have been deleted or
// evicted meanwhile). It returns the new file's attributes.
func (x *Index) writeFile(dir, name string, data []byte) (os.FileInfo, error) {
	path := filepath.Join(dir, name)
	if err := x.beginWrite(path); err != nil {
		return nil, err
	}
	var fi os.FileInfo
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		fi, err = x.writeFileOnce(dir, path, data)
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			break
		}
		// The directory vanished under us (deleted, evicted): again.
	}
	if err != nil {
		return nil, x.writeFailed(path, err)
	}
	x.writeOK(len(data))
	return fi, nil
}

func (x *Index) writeFileOnce(dir, path string, data []byte) (os.FileInfo, error) {
	if err := os.MkdirAll(dir, x.cfg.DirMode); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	fail := func(err error) (os.FileInfo, error) {
		_ = f.Close()
		_ = os.Remove(tmp)
		return nil, err
	}
	if err := f.Chmod(x.cfg.FileMode); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if x.cfg.Fsync {
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return nil, err
	}
	return fi, nil
}

// readFile reads a whole file and returns it with its attributes.
// A missing file (or directory) is ErrNotFound.
func readFile(path string) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, ErrNotFound
		}
		return nil, nil, fmt.Errorf("localindex: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("localindex: %w", err)
	}
	size := fi.Size()
	if size > 1<<40 {
		return nil, nil, fmt.Errorf("%w: %s has %d bytes", ErrCorrupt, path, size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			// Truncated while we read it: as good as corrupt.
			return nil, nil, fmt.Errorf("%w: %s shrank while read", ErrCorrupt, path)
		}
		return nil, nil, fmt.Errorf("localindex: read %s: %w", path, err)
	}
	return b, fi, nil
}

// discard handles a file that failed to load for a reason other than
// not-found: counted, logged and removed (unless it was replaced meanwhile)
// so that it is rebuilt. It returns the error to give the caller, which
// always matches ErrCorrupt.
func (x *Index) discard(user, mailbox, path string, fi os.FileInfo, err error) error {
	x.st.corrupt.Add(1)
	x.logger.Warn("discarding local index file", "user", user, "mailbox", mailbox, "path", path, "err", err)
	mu := x.lockFor(user, mailbox)
	mu.Lock()
	defer mu.Unlock()
	if cur, serr := os.Stat(path); serr == nil && (fi == nil || os.SameFile(cur, fi)) {
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			x.logger.Warn("cannot remove corrupt local index file", "path", path, "err", rerr)
		}
	}
	if !errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}

// Touch records that a session uses this user now (for eviction, coldest
// first). The time is kept in memory and, at most every
// Config.TouchInterval, in the user's stamp file so that it survives a
// restart. Write errors are counted and otherwise ignored.
func (x *Index) Touch(user string) {
	now := x.cfg.Now()
	dir := userDirName(user)
	x.usersMu.Lock()
	u := x.users[dir]
	if u == nil {
		u = &userState{}
		x.users[dir] = u
	}
	u.lastUse = now
	write := now.Sub(u.stampWrites) >= x.cfg.TouchInterval
	if write {
		u.stampWrites = now
	}
	x.usersMu.Unlock()
	if !write {
		return
	}
	b := frameStart(nil, magicUser)
	b = appendStr(b, user)
	b = binary.AppendVarint(b, now.UnixNano())
	b = frameFinish(b)
	dir = x.userDir(user)
	if _, err := x.writeFile(dir, stampFile, b); err != nil {
		x.usersMu.Lock()
		u.stampWrites = time.Time{}
		x.usersMu.Unlock()
		return
	}
	// The stamp's mtime is the last use that eviction reads after a
	// restart: make it the index's clock.
	_ = os.Chtimes(filepath.Join(dir, stampFile), now, now)
}

// stampFile is the per-user file whose mtime is the user's last use.
const stampFile = "user"

// acquire and release count a user's open Mailboxes; eviction prefers users
// without any.
func (x *Index) acquire(user string) {
	dir := userDirName(user)
	x.usersMu.Lock()
	u := x.users[dir]
	if u == nil {
		u = &userState{lastUse: x.cfg.Now()}
		x.users[dir] = u
	}
	u.active++
	x.usersMu.Unlock()
}

func (x *Index) release(user string) {
	dir := userDirName(user)
	x.usersMu.Lock()
	if u := x.users[dir]; u != nil && u.active > 0 {
		u.active--
		u.lastUse = x.cfg.Now()
	}
	x.usersMu.Unlock()
}

// RemoveUser deletes everything the index holds about a user (for example
// when the user was deleted from the spool).
func (x *Index) RemoveUser(user string) error {
	if err := os.RemoveAll(x.userDir(user)); err != nil {
		return fmt.Errorf("localindex: remove user: %w", err)
	}
	return nil
}

// RemoveMailbox deletes a mailbox's files (after DELETE or RENAME).
func (x *Index) RemoveMailbox(user, mailbox string) error {
	mu := x.lockFor(user, mailbox)
	mu.Lock()
	defer mu.Unlock()
	base := filepath.Join(x.userDir(user), mailboxBase(mailbox))
	var errs []error
	for _, ext := range []string{extSummary, extIndex, extLog} {
		if err := os.Remove(base + ext); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("localindex: remove mailbox: %w", err)
	}
	return nil
}

const (
	extSummary = ".sum"
	extIndex   = ".idx"
	extLog     = ".log"
)
