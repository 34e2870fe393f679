package nfslock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// DefaultTimeout is how long Acquire waits for a held lock when
	// Options.Timeout is 0.
	DefaultTimeout = 30 * time.Second
	// DefaultStaleAge is the age at which an untouched lock is broken when
	// Options.StaleAge is 0 (Dovecot's uidlist lock uses the same).
	DefaultStaleAge = 2 * time.Minute
	// DefaultMinBackoff and DefaultMaxBackoff bound the wait between two
	// attempts to take a held lock.
	DefaultMinBackoff = 2 * time.Millisecond
	DefaultMaxBackoff = time.Second

	// minStaleAge: NFS servers may keep whole-second mtimes, so a shorter
	// stale age would break locks that are being refreshed.
	minStaleAge = time.Second
	// clockSkewWarn: a lock file's mtime further than this from our clock
	// means the file server's clock and ours disagree.
	clockSkewWarn = 30 * time.Second
	// maxQuick bounds the attempts in a row without a wait (after a lock
	// vanished or was broken), so Acquire never spins.
	maxQuick = 3
	// lockSuffix is appended to the locked file's path (Dovecot's name).
	lockSuffix = ".lock"
	// refreshSkipDivisor: Refresh does nothing within StaleAge/8 of the
	// last touch. The refresh goroutine ticks every StaleAge/4, so a long
	// holder's lock is never older than 3/8 of StaleAge.
	refreshSkipDivisor = 8
)

var (
	// ErrTimeout is returned (wrapped) by Acquire when the lock stayed held
	// for Options.Timeout.
	ErrTimeout = errors.New("nfslock: timed out waiting for the lock")
	// ErrStolen is returned (wrapped) by Refresh and Release when the file
	// at the lock path is no longer the holder's: someone broke the lock.
	ErrStolen = errors.New("nfslock: lock was taken away")
	// ErrReleased is returned by Refresh and Release after Release.
	ErrReleased = errors.New("nfslock: lock already released")
)

// Options configure Acquire. The zero value is valid and means the defaults.
type Options struct {
	// Timeout is how long Acquire waits for a held lock; 0 = DefaultTimeout (30s).
	Timeout time.Duration
	// StaleAge: a lock not changed for this long is broken; 0 =
	// DefaultStaleAge (2m). It must be at least 1s, and well above the clock
	// difference between the machines and the file server.
	StaleAge time.Duration
	// Host is the host name written into the lock; "" = os.Hostname(). A
	// lock from the same host name whose pid is gone is broken at once, so it
	// must be unique among the machines sharing the spool. Printable ASCII
	// without ':', '/' and spaces.
	Host string
	// NoAutoRefresh turns off the goroutine Acquire starts by default to
	// refresh the lock's mtime every StaleAge/4 until Release. Without it,
	// the holder calls Refresh itself well within StaleAge.
	NoAutoRefresh bool
	// Logger receives stale-lock breaks (Info), clock trouble and refresh
	// failures (Warn) and stolen locks (Error); nil = discard.
	Logger *slog.Logger
	// MinBackoff is the first wait between attempts on a held lock; 0 =
	// DefaultMinBackoff. The wait doubles, with random jitter, up to
	// MaxBackoff, and starts over when the lock changes hands.
	MinBackoff time.Duration
	// MaxBackoff is the longest wait between attempts; 0 =
	// DefaultMaxBackoff. It is never more than StaleAge/4.
	MaxBackoff time.Duration
	// OnAcquire, when set, is called once at the end of every Acquire with
	// how long the call took (the wait for a held lock included) and its
	// error (nil when the lock was taken), for metrics. It is called from
	// the goroutine that called Acquire and must not block.
	OnAcquire func(waited time.Duration, err error)
}

// DefaultOptions returns the options with every default filled in (except
// Host, which is looked up by Acquire, and Logger).
func DefaultOptions() Options {
	return Options{
		Timeout:    DefaultTimeout,
		StaleAge:   DefaultStaleAge,
		MinBackoff: DefaultMinBackoff,
		MaxBackoff: DefaultMaxBackoff,
	}
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	var errs []error
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v is negative", o.Timeout))
	}
	if o.StaleAge != 0 && o.StaleAge < minStaleAge {
		errs = append(errs, fmt.Errorf("stale age %v is below %v", o.StaleAge, minStaleAge))
	}
	if o.MinBackoff < 0 {
		errs = append(errs, fmt.Errorf("min back-off %v is negative", o.MinBackoff))
	}
	if o.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("max back-off %v is negative", o.MaxBackoff))
	}
	if o.MinBackoff > 0 && o.MaxBackoff > 0 && o.MinBackoff > o.MaxBackoff {
		errs = append(errs, fmt.Errorf("min back-off %v is above max back-off %v", o.MinBackoff, o.MaxBackoff))
	}
	if o.Host != "" {
		if err := checkHost(o.Host); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("nfslock: invalid options: %w", err)
	}
	return nil
}

// withDefaults fills in zero fields.
func (o Options) withDefaults() (Options, error) {
	d := DefaultOptions()
	if o.Timeout == 0 {
		o.Timeout = d.Timeout
	}
	if o.StaleAge == 0 {
		o.StaleAge = d.StaleAge
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = d.MinBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = d.MaxBackoff
	}
	o.MaxBackoff = min(o.MaxBackoff, o.StaleAge/4)
	o.MinBackoff = min(o.MinBackoff, o.MaxBackoff)
	if o.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return o, fmt.Errorf("nfslock: host name: %w", err)
		}
		if err := checkHost(h); err != nil {
			return o, fmt.Errorf("nfslock: os.Hostname is not usable, set Options.Host: %w", err)
		}
		o.Host = h
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Lock is a held dot-lock. Its methods are safe for concurrent use.
type Lock struct {
	lockPath string    // the locked file's path + ".lock"
	own      []byte    // our lock file's content; its nonce makes it unique
	acq      *acquirer // for moveAsideAndRemove's names and the logger
	// minRefresh: a Refresh this soon after the last touch does nothing.
	minRefresh time.Duration

	stopOnce    sync.Once
	stop        chan struct{} // closed to stop the refresh goroutine
	refreshDone chan struct{} // closed when the refresh goroutine ended (nil without one)
	lostOnce    sync.Once
	lost        chan struct{} // closed when the lock is found stolen

	stateMu  sync.Mutex // guards released and touched, serialises Refresh and Release
	released bool
	// touched is when (by our clock) we last asked for the lock's mtime to
	// be set, taken before the request: the mtime is at least this new.
	touched time.Time
}

// acquirer holds what one Acquire call needs.
type acquirer struct {
	opt      Options
	log      *slog.Logger
	host     string
	pid      int
	path     string
	lockPath string
}

// Acquire takes the dot-lock "<path>.lock" for the file path (Dovecot's
// naming). It waits up to Options.Timeout while someone else holds it, with
// a jittered exponential back-off, and breaks stale locks (see the package
// documentation). It returns an error wrapping ErrTimeout when the time is
// up, and one wrapping ctx.Err() when ctx ends first. ctx only bounds the
// wait: the lock, once held, lives until Release, which the caller must call
// (it also stops the refresh goroutine). Acquire is safe for concurrent use;
// goroutines of one process exclude each other like processes do.
func Acquire(ctx context.Context, path string, opt Options) (l *Lock, err error) {
	if opt.OnAcquire != nil {
		start := time.Now()
		defer func() { opt.OnAcquire(time.Since(start), err) }()
	}
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	o, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nfslock: acquire %s: %w", path, err)
	}
	a := &acquirer{
		opt:      o,
		log:      o.Logger.With("lock", path+lockSuffix),
		host:     o.Host,
		pid:      os.Getpid(),
		path:     path,
		lockPath: path + lockSuffix,
	}
	own, touched, err := a.run(ctx)
	if err != nil {
		return nil, err
	}
	l = &Lock{
		lockPath:   a.lockPath,
		own:        own,
		acq:        a,
		minRefresh: o.StaleAge / refreshSkipDivisor,
		touched:    touched,
		stop:       make(chan struct{}),
		lost:       make(chan struct{}),
	}
	if !o.NoAutoRefresh {
		l.refreshDone = make(chan struct{})
		go l.autoRefresh(o.StaleAge / 4)
	}
	return l, nil
}

// run is Acquire's loop. It returns the content of our lock file and when
// its mtime was last set (by our clock, taken before the request).
func (a *acquirer) run(ctx context.Context) ([]byte, time.Time, error) {
	start := time.Now()
	deadline := start.Add(a.opt.Timeout)

	temp, own, err := a.createTemp()
	if err != nil {
		return nil, time.Time{}, err
	}
	defer func() {
		if err := removeFile(temp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			a.log.Warn("cannot remove temp file", "path", temp, "err", err)
		}
	}()
	lastTouch := start

	var (
		seen       bool      // we have looked at someone else's lock
		other      snapshot  // what we saw last
		lastChange time.Time // when it last changed, by our clock
		attempt    int       // back-off step, reset when the lock changes hands
		quick      int       // attempts in a row without waiting
	)
	for {
		if err := ctx.Err(); err != nil {
			return nil, time.Time{}, fmt.Errorf("nfslock: acquire %s: %w", a.lockPath, err)
		}
		// Keep the temp file's mtime fresh while we wait, so the lock is not
		// born looking old.
		if time.Since(lastTouch) > a.opt.StaleAge/8 {
			t := time.Now()
			if err := touchPath(temp); err != nil {
				return nil, time.Time{}, fmt.Errorf("nfslock: refresh temp file: %w", err)
			}
			lastTouch = t
		}
		ok, err := a.tryLink(temp, own)
		if err != nil {
			return nil, time.Time{}, err
		}
		if ok {
			if attempt > 0 || seen {
				a.log.Debug("lock acquired after waiting", "waited", time.Since(start))
			}
			return own, lastTouch, nil
		}

		// Someone holds it: look at their lock.
		cur, err := readSnapshot(a.lockPath)
		now := time.Now()
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Released between our link and our look: try again at once,
			// but do not spin if it keeps happening.
			if quick++; quick <= maxQuick {
				continue
			}
		case err != nil:
			// ESTALE and friends: wait and retry until the deadline.
			a.log.Debug("cannot read lock file", "err", err)
		default:
			if !seen || !cur.sameFile(other, true) {
				if seen {
					// Changed hands or was refreshed: it is alive. Start the
					// back-off over; the lock is moving.
					lastChange = now
					attempt = 0
				} else {
					// First look: trust the file's mtime unless it is in
					// the future.
					lastChange = cur.mtime
					if cur.mtime.After(now) {
						lastChange = now
						if d := cur.mtime.Sub(now); d > clockSkewWarn {
							a.log.Warn("lock file is from the future: the file server's clock is ahead of ours; stale lock detection needs them close",
								"difference", d)
						}
					}
				}
				other, seen = cur, true
			}
			if reason := a.staleReason(cur, lastChange, now); reason != "" {
				err := a.removeIfSame(a.lockPath, cur, true)
				switch {
				case err == nil:
					a.log.Info("broke stale lock", "reason", reason, "content", printable(cur.content),
						"mtime", cur.mtime)
					seen = false
					if quick++; quick <= maxQuick {
						continue
					}
				case errors.Is(err, errGone), errors.Is(err, errChanged):
					seen = false
					if quick++; quick <= maxQuick {
						continue
					}
				default:
					a.log.Warn("cannot break stale lock", "reason", reason, "err", err)
				}
			}
		}

		if err := ctx.Err(); err != nil {
			return nil, time.Time{}, fmt.Errorf("nfslock: acquire %s: %w", a.lockPath, err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, time.Time{}, fmt.Errorf("%w: %s after %v (held: %s)", ErrTimeout, a.lockPath,
				a.opt.Timeout, printable(other.content))
		}
		wait := min(a.backoff(attempt), left)
		attempt++
		quick = 0
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, time.Time{}, fmt.Errorf("nfslock: acquire %s: %w", a.lockPath, ctx.Err())
		case <-t.C:
		}
	}
}

// createTemp writes our temp file and returns its name and content.
//
// It costs open, write and close. There is no fsync: a lock only matters
// while its holder runs, and close makes an NFS client send the data to
// the server (close-to-open), so whoever opens the lock sees its content.
// There is no fstat either: the content (with its nonce) identifies our
// lock, and the file server's clock is checked where an mtime is read
// anyway (a lock in the future while waiting, a long holder's Refresh).
func (a *acquirer) createTemp() (string, []byte, error) {
	dir := filepath.Dir(a.lockPath)
	nonce := newNonce()
	name := tempName(dir, a.host, a.pid, nonce)
	content := formatContent(owner{PID: a.pid, Host: a.host, Nonce: nonce})
	var fd int
	err := retryStale(func() (err error) {
		fd, err = openFile(name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o644)
		return err
	})
	if err != nil {
		return "", nil, fmt.Errorf("nfslock: create temp file: %w", err)
	}
	werr := writeFD(fd, name, content)
	var cerr error
	if err := closeFD(fd); err != nil {
		cerr = &fs.PathError{Op: "close", Path: name, Err: err}
	}
	if err := errors.Join(werr, cerr); err != nil {
		_ = removeFile(name)
		return "", nil, fmt.Errorf("nfslock: write temp file: %w", err)
	}
	return name, content, nil
}

// tryLink tries to link the temp file to the lock path. It reports true
// when the lock is ours.
func (a *acquirer) tryLink(temp string, own []byte) (bool, error) {
	err := retryStale(func() error { return unix.Link(temp, a.lockPath) })
	if err == nil {
		return true, nil
	}
	// The reply may have been lost: the link may exist despite the error.
	// Nobody else links our temp file, so a count of 2 means the lock path
	// is it; the inode and content are checked to be sure.
	if n, ino, serr := linkCount(temp); serr == nil && n == 2 {
		if cur, rerr := readSnapshot(a.lockPath); rerr == nil && cur.ino == ino && bytes.Equal(cur.content, own) {
			return true, nil
		}
	}
	if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ESTALE) {
		return false, nil
	}
	return false, fmt.Errorf("nfslock: %w", &os.LinkError{Op: "link", Old: temp, New: a.lockPath, Err: err})
}

// staleReason says why the lock in cur can be broken, or "" if it cannot.
func (a *acquirer) staleReason(cur snapshot, lastChange, now time.Time) string {
	if o, ok := parseContent(cur.content); ok && o.Host == a.host && o.PID != a.pid && !pidAlive(o.PID) {
		return fmt.Sprintf("process %d on this host is gone", o.PID)
	}
	age := now.Sub(lastChange)
	limit := a.opt.StaleAge
	if cur.mtime.Nanosecond() == 0 {
		// A whole-second mtime may be up to a second older than the change.
		limit += time.Second
	}
	if age > limit {
		return fmt.Sprintf("unchanged for %v", age.Round(time.Millisecond))
	}
	return ""
}

// backoff returns the wait before attempt n+1: exponential from MinBackoff
// to MaxBackoff, the upper half of it random so waiters spread out.
func (a *acquirer) backoff(n int) time.Duration {
	d := a.opt.MinBackoff
	for i := 0; i < n && d < a.opt.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, a.opt.MaxBackoff)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// pidAlive reports whether process pid exists on this machine.
func pidAlive(pid int) bool {
	if pid <= 0 {
		return true // never signal a process group; treat as unknown
	}
	err := unix.Kill(pid, 0)
	return !errors.Is(err, unix.ESRCH)
}

// printable renders lock content for logs and errors.
func printable(b []byte) string {
	if len(b) > 80 {
		b = b[:80]
	}
	return fmt.Sprintf("%q", b)
}

// Path returns the path of the lock file, "<path>.lock".
func (l *Lock) Path() string { return l.lockPath }

// Lost returns a channel that is closed when the lock was found stolen, by
// the refresh goroutine, Refresh or Release.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

func (l *Lock) markLost() { l.lostOnce.Do(func() { close(l.lost) }) }

// Refresh sets the lock's mtime to now, so others do not judge it stale. It
// returns an error wrapping ErrStolen when the file at the lock path is no
// longer ours, and ErrReleased after Release.
//
// A Refresh within StaleAge/8 of the last touch (Acquire's, or the last
// Refresh that did its work) does nothing and costs no request: nobody
// breaks a lock younger than StaleAge, so checking and touching it again
// so soon adds nothing. A lock already found stolen still returns
// ErrStolen. A holder that keeps the lock longer is refreshed, and checked,
// as before.
func (l *Lock) Refresh() error {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	if time.Since(l.touched) < l.minRefresh {
		return nil
	}
	return l.refreshLocked()
}

// Verify checks that the lock file is still ours, without refreshing it:
// open (which revalidates the attributes on NFS), read (our content) and
// close. Call it right before a change the lock protects becomes visible
// (a rename over the locked file), so that a holder whose lock was broken
// does not overwrite the new holder's work. A lock found stolen is
// reported with ErrStolen, here and from then on.
func (l *Lock) Verify() error {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	fd, err := l.openOwnLocked("verify")
	if err != nil {
		return err
	}
	closeFD(fd)
	return nil
}

// usableLocked returns ErrReleased after Release, and an error wrapping
// ErrStolen once the lock was found taken; nil otherwise.
func (l *Lock) usableLocked() error {
	if l.released {
		return ErrReleased
	}
	select {
	case <-l.lost:
		return fmt.Errorf("%w: %s was found taken earlier", ErrStolen, l.lockPath)
	default:
	}
	return nil
}

// openOwnLocked opens the lock file and checks that it holds our content;
// it returns the open descriptor, or an error (wrapping ErrStolen when the
// file is gone or someone else's). op names the caller in errors.
func (l *Lock) openOwnLocked(op string) (int, error) {
	var fd int
	err := retryStale(func() (err error) {
		fd, err = openFile(l.lockPath, unix.O_RDONLY, 0)
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		l.markLost()
		return -1, fmt.Errorf("%w: %s is gone", ErrStolen, l.lockPath)
	}
	if err != nil {
		return -1, fmt.Errorf("nfslock: %s: %w", op, err)
	}
	cur, err := readFD(fd, l.lockPath, len(l.own), maxContent+1)
	if err != nil {
		closeFD(fd)
		return -1, fmt.Errorf("nfslock: %s: %w", op, err)
	}
	if !bytes.Equal(cur, l.own) {
		closeFD(fd)
		l.markLost()
		return -1, fmt.Errorf("%w: %s now holds %s", ErrStolen, l.lockPath, printable(cur))
	}
	return fd, nil
}

// refreshLocked checks that the lock is still ours and sets its mtime:
// open (which revalidates the attributes on NFS), read (our content, to
// see it was not stolen), utimensat, fstat (the mtime the server set, to
// compare clocks) and close.
func (l *Lock) refreshLocked() error {
	fd, err := l.openOwnLocked("refresh")
	if err != nil {
		return err
	}
	defer closeFD(fd)
	before := time.Now()
	if err := touchFD(fd, l.lockPath); err != nil {
		return fmt.Errorf("nfslock: refresh: %w", err)
	}
	l.touched = before
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err == nil {
		if d := time.Unix(st.Mtim.Sec, st.Mtim.Nsec).Sub(before); d > clockSkewWarn || d < -clockSkewWarn {
			l.acq.log.Warn("file server clock differs from ours; stale lock detection needs them close",
				"difference", d, "file", l.lockPath)
		}
	}
	return nil
}

// Release stops the refresh goroutine and removes the lock file if it is
// still ours (its content, which holds our nonce). Otherwise it leaves the
// file in place and returns an error wrapping ErrStolen. A second Release
// returns ErrReleased.
//
// It costs rename, open, read, close and unlink: the lock is renamed to a
// private name first and only that moved file is read, so what is checked
// is exactly what gets removed (a check before the rename could be
// overtaken by someone breaking and retaking the lock in between). A
// stolen lock is linked back into place.
func (l *Lock) Release() error {
	l.stopRefresh()
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	if l.released {
		return ErrReleased
	}
	l.released = true
	err := l.acq.moveAsideAndRemove(l.lockPath, func(aside string) (bool, error) {
		cur, err := readPrefix(aside, len(l.own))
		return err == nil && bytes.Equal(cur, l.own), err
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errGone):
		l.markLost()
		return fmt.Errorf("%w: %s is gone", ErrStolen, l.lockPath)
	case errors.Is(err, errChanged):
		l.markLost()
		return fmt.Errorf("%w: %s holds someone else's lock", ErrStolen, l.lockPath)
	default:
		return fmt.Errorf("nfslock: release: %w", err)
	}
}

func (l *Lock) stopRefresh() {
	l.stopOnce.Do(func() { close(l.stop) })
	if l.refreshDone != nil {
		<-l.refreshDone
	}
}

// autoRefresh refreshes the lock every interval until Release or until the
// lock is found stolen.
func (l *Lock) autoRefresh(interval time.Duration) {
	defer close(l.refreshDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		err := l.Refresh()
		switch {
		case err == nil:
		case errors.Is(err, ErrReleased):
			return
		case errors.Is(err, ErrStolen):
			l.acq.log.Error("lock was taken away while held", "err", err)
			return
		default:
			l.acq.log.Warn("cannot refresh lock", "err", err)
		}
	}
}
