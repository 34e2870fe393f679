package maildir

import (
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Listings on filers with whole-second mtimes.
//
// An NFS client keeps a directory's listing while the directory's mtime
// looks unchanged, and drops it when the mtime changes or when the client
// itself creates, removes or renames a name in the directory. With
// whole-second mtimes, a change another node makes in the same second as
// our listing leaves the mtime as it was: the client goes on serving the
// old listing, and every later listing, until the directory changes
// again. Listing again does not help, and nothing but a change made
// through this client makes it fetch the listing anew.
//
// So a listing that started less than a second (plus coarseMargin for the
// clock skew between filer and node) after the directory's whole-second
// mtime is suspicious. Once that second is over, the next sync flushes
// the client's cached listing by creating and unlinking a dot-file marker
// in the directory (maildir readers, ours and Dovecot's, skip names that
// begin with '.'), but does not list in that sync: the marker moved the
// mtime to the current second, so a listing now would be suspicious again
// (and flush again, for ever). A sync a second (plus the margin) after the
// flush's mtime lists: the client's cache is gone and nothing on this node
// listed the directory since, so the listing comes from the filer, and it
// is taken in a later second than the mtime, which any later change then
// moves. Until then syncs use the last listing, as the client's cache
// would have. (When the flush runs is not what makes this safe, only that
// nothing lists between the flush and the trusted listing; waiting for
// the mtime's second to end saves the flush when the directory changes
// again meanwhile.) A change another node makes within a second of ours
// shows within about 3 s. A directory whose mtime
// changes meanwhile is listed as usual (the client dropped its cache) and
// judged anew. A filer with finer mtimes never makes a listing
// suspicious: an mtime with a fraction of a second is taken as fine
// grained.
//
// The state is per node, not per handle, since all handles of a node see
// one client cache: ListingGuard is shared by every Store made with one
// Options value.

// coarseMargin is the clock skew allowed between filer and node.
const coarseMargin = time.Second

// maxSuspects bounds the directories a ListingGuard tracks; beyond it,
// states older than suspectMaxAge are dropped (a directory no one syncs
// any more needs none).
const (
	maxSuspects   = 4096
	suspectMaxAge = time.Minute
)

// ListingGuard remembers the directories whose last listing may be stale
// because of whole-second mtimes (see above). It is safe for concurrent
// use; one guard serves all Stores of a node (Options.Listings).
type ListingGuard struct {
	mu   sync.Mutex // guards dirs
	dirs map[string]*suspectDir
}

// suspectDir is the state of one suspicious directory.
type suspectDir struct {
	mtime    int64    // the directory's mtime (UnixNano) the state is about
	flushing bool     // a flush is under way (by some handle)
	flushed  bool     // the flush is done; mtime is the one it left
	relisted bool     // a listing landed while flushing
	names    []string // the last listing, used until a listing can be trusted
	since    time.Time
}

// NewListingGuard returns an empty guard.
func NewListingGuard() *ListingGuard {
	return &ListingGuard{dirs: make(map[string]*suspectDir)}
}

// listingTrusted tells whether a listing of a directory with mtime
// (UnixNano) that started at start can be trusted.
func listingTrusted(mtime int64, start time.Time) bool {
	if mtime%int64(time.Second) != 0 {
		return true // fine-grained mtimes: any change moves them
	}
	return start.UnixNano() >= mtime+int64(time.Second+coarseMargin)
}

// guardAction is what plan tells a lister to do.
type guardAction int

const (
	guardList  guardAction = iota // list the directory
	guardHold                     // use the names returned, do not list
	guardFlush                    // flush the cached listing, then use the names returned
)

// plan decides how to read dir, whose mtime (revalidated by the caller)
// is mtime, at now.
func (g *ListingGuard) plan(dir string, mtime int64, now time.Time) (guardAction, []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.dirs[dir]
	if st == nil {
		return guardList, nil
	}
	if mtime < st.mtime {
		// The caller's attributes are older than the state (taken before
		// a flush by another handle): do as the state says for now.
		return guardHold, st.names
	}
	if mtime > st.mtime {
		// Changed since: the client dropped its cached listing.
		delete(g.dirs, dir)
		return guardList, nil
	}
	switch {
	case st.flushed:
		if listingTrusted(st.mtime, now) {
			delete(g.dirs, dir)
			return guardList, nil
		}
	case st.flushing:
	case now.UnixNano() >= st.mtime+int64(time.Second):
		st.flushing = true
		return guardFlush, st.names
	}
	return guardHold, st.names
}

// flushed records the end of a flush of dir planned for mtime: after
// is the directory's mtime after it (0: the flush failed; the state is
// dropped and the next sync lists as usual).
func (g *ListingGuard) flushed(dir string, mtime, after int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.dirs[dir]
	if st == nil || st.mtime != mtime || !st.flushing {
		return
	}
	if after == 0 {
		delete(g.dirs, dir)
		return
	}
	// A listing that landed during the flush may have filled the cache
	// again: then another flush is due.
	st.mtime, st.flushing, st.flushed = after, false, !st.relisted
	st.relisted = false
}

// record judges a listing of dir (mtime before it, started at start).
func (g *ListingGuard) record(dir string, mtime int64, start time.Time, names []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if st, ok := g.dirs[dir]; ok && (st.flushing || st.flushed) && mtime <= st.mtime {
		// Another handle of this node listed (it planned before the
		// state was made) between a flush and the trusted listing: the
		// client may have cached that listing, so another flush is due.
		if st.flushing {
			st.relisted = true
		} else {
			st.flushed = false
		}
		st.names = names
		return
	}
	if listingTrusted(mtime, start) {
		delete(g.dirs, dir)
		return
	}
	if len(g.dirs) >= maxSuspects {
		for d, st := range g.dirs {
			if start.Sub(st.since) > suspectMaxAge {
				delete(g.dirs, d)
			}
		}
		if len(g.dirs) >= maxSuspects {
			clear(g.dirs)
		}
	}
	g.dirs[dir] = &suspectDir{mtime: mtime, names: names, since: start}
}

// forget drops the states of new/ and cur/ of the maildir dir: this node
// changed a name in it, which made the client drop its cached listing
// (and moved the mtime, perhaps within the same second, where plan could
// not see it).
func (g *ListingGuard) forget(maildir string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.dirs) == 0 {
		return
	}
	delete(g.dirs, filepath.Join(maildir, "new"))
	delete(g.dirs, filepath.Join(maildir, "cur"))
}

// suspicious tells whether dir has a state.
func (g *ListingGuard) suspicious(dir string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.dirs[dir]
	return ok
}

// listDir lists the maildir subdirectory dir, whose mtime (UnixNano,
// taken with the handle's stamp before the listing; 0: unknown) is mtime,
// through the Store's ListingGuard. The names must not be modified.
func (s *Store) listDir(dir string, mtime int64) ([]string, error) {
	g := s.opt.Listings
	if mtime == 0 {
		return s.readDirNames(dir)
	}
	now := s.opt.Now()
	act, names := g.plan(dir, mtime, now)
	switch act {
	case guardHold:
		return names, nil
	case guardFlush:
		g.flushed(dir, mtime, s.flushListing(dir))
		return names, nil
	}
	names, err := s.readDirNames(dir)
	if err == nil {
		g.record(dir, mtime, now, names)
	}
	return names, err
}

// flushListing makes this client drop its cached listing of dir by
// creating and unlinking a marker in it, and returns the directory's
// mtime after that (UnixNano), or 0 when it failed.
func (s *Store) flushListing(dir string) int64 {
	marker := filepath.Join(dir, ".nfsimap-flush."+s.newUnique())
	var fd int
	err := s.retryStale(func() error {
		return eintr(func() (err error) {
			fd, err = unix.Open(marker, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, uint32(s.opt.FileMode.Perm()))
			return err
		})
	})
	if err != nil {
		s.opt.Logger.Warn("cannot flush a cached directory listing", "dir", dir, "err", err)
		return 0
	}
	_ = unix.Close(fd)
	if err := s.retryStale(func() error { return unix.Unlink(marker) }); err != nil {
		s.opt.Logger.Warn("cannot remove a listing flush marker", "path", marker, "err", err)
	}
	s.op(OpListingFlush)
	st, err := s.stat(dir)
	if err != nil {
		return 0
	}
	after := st.ModTime().UnixNano()
	if after == 0 {
		after = 1
	}
	return after
}
