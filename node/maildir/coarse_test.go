package maildir

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nfsimap/nfsimap/internal/nfstest"
)

func TestListingTrusted(t *testing.T) {
	sec := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		mtime time.Time
		start time.Time
		want  bool
	}{
		{sec, sec.Add(300 * time.Millisecond), false},
		{sec, sec.Add(1900 * time.Millisecond), false},
		{sec, sec.Add(2 * time.Second), true},
		{sec, sec.Add(-time.Second), false},                                   // node clock behind
		{sec.Add(5 * time.Millisecond), sec.Add(10 * time.Millisecond), true}, // fine mtimes
	} {
		if got := listingTrusted(c.mtime.UnixNano(), c.start); got != c.want {
			t.Errorf("listingTrusted(%v, %v) = %v, want %v", c.mtime, c.start, got, c.want)
		}
	}
}

// TestListingGuardPlan walks one directory through the guard's states
// with a made-up clock: suspicious listing, hold, flush, hold, list.
func TestListingGuardPlan(t *testing.T) {
	g := NewListingGuard()
	const dir = "/spool/u/Maildir/cur"
	m := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	mt := m.UnixNano()
	names := []string{"a", "b"}
	g.record(dir, mt, m.Add(400*time.Millisecond), names)
	if !g.suspicious(dir) {
		t.Fatal("a listing in the mtime's second is not suspicious")
	}
	if act, got := g.plan(dir, mt, m.Add(900*time.Millisecond)); act != guardHold || len(got) != 2 {
		t.Fatalf("within the mtime's second: %v %v, want hold", act, got)
	}
	act, _ := g.plan(dir, mt, m.Add(1100*time.Millisecond))
	if act != guardFlush {
		t.Fatalf("after the mtime's second: %v, want flush", act)
	}
	if act, _ := g.plan(dir, mt, m.Add(1200*time.Millisecond)); act != guardHold {
		t.Fatalf("during the flush: %v, want hold", act)
	}
	f := m.Add(time.Second).UnixNano() // the marker moved the mtime
	g.flushed(dir, mt, f)
	if act, _ := g.plan(dir, f, m.Add(2500*time.Millisecond)); act != guardHold {
		t.Fatalf("in the flush's second: %v, want hold (no listing that would be suspicious again)", act)
	}
	if act, _ := g.plan(dir, f, m.Add(2900*time.Millisecond)); act != guardHold {
		t.Fatalf("within the margin after the flush: %v, want hold", act)
	}
	if act, _ := g.plan(dir, f, m.Add(3100*time.Millisecond)); act != guardList {
		t.Fatalf("a second and the margin after the flush: %v, want list", act)
	}
	if g.suspicious(dir) {
		t.Fatal("state kept after the trusted listing")
	}

	// A listing by another handle between a flush and the trusted
	// listing makes another flush due.
	g.record(dir, mt, m.Add(100*time.Millisecond), names)
	if act, _ := g.plan(dir, mt, m.Add(1100*time.Millisecond)); act != guardFlush {
		t.Fatalf("want flush, got %v", act)
	}
	g.flushed(dir, mt, f)
	g.record(dir, mt, m.Add(1300*time.Millisecond), names) // planned before the flush
	if act, _ := g.plan(dir, mt, m.Add(1400*time.Millisecond)); act != guardHold {
		t.Fatalf("stale attributes after a flush: %v, want hold", act)
	}
	if act, _ := g.plan(dir, f, m.Add(2100*time.Millisecond)); act != guardFlush {
		t.Fatalf("after a listing that landed behind the flush: %v, want another flush", act)
	}
	g.forget(filepath.Dir(dir))

	// A directory that changed meanwhile is listed at once.
	g.record(dir, mt, m.Add(100*time.Millisecond), names)
	if act, _ := g.plan(dir, mt+int64(time.Second), m.Add(1200*time.Millisecond)); act != guardList {
		t.Fatalf("changed directory: %v, want list", act)
	}
	// A change made by this node drops the state.
	g.record(dir, mt, m.Add(100*time.Millisecond), names)
	g.forget(filepath.Dir(dir))
	if g.suspicious(dir) {
		t.Fatal("forget kept the state")
	}
}

// TestCoarseMtimeListingFlush reproduces the stale listing on an NFS-like
// mount with whole-second mtimes and a cached directory listing: a file
// another node adds to cur/ in the same second as this node's listing
// leaves cur/'s mtime as it was, so the mount keeps serving the old
// listing. The guard must make the file show within a few seconds, with
// a flush or two, and then stop flushing.
func TestCoarseMtimeListingFlush(t *testing.T) {
	if err := nfstest.Available(); err != nil {
		t.Skipf("no FUSE here: %v", err)
	}
	backing := t.TempDir()
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(backing, "Maildir", sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	mnt := nfstest.MountT(t, backing, nfstest.Options{CacheDir: true})
	mnt.SetFaults(nfstest.Faults{CoarseMtime: true})
	var flushes atomic.Int64
	opt := testOptions(t)
	opt.OnOp = func(op string) {
		if op == OpListingFlush {
			flushes.Add(1)
		}
	}
	s, err := New(Paths{Inbox: filepath.Join(mnt.Dir, "Maildir")}, opt)
	if err != nil {
		t.Fatal(err)
	}
	m := mustMailbox(t, s, "INBOX")
	other := filepath.Join(backing, "Maildir", "cur") // another node: straight to the filer
	curDir := filepath.Join(mnt.Dir, "Maildir", "cur")
	newDir := filepath.Join(mnt.Dir, "Maildir", "new")

	// The race needs the listing and the other node's second file in one
	// second: start early in a second, and try again if it was missed.
	var second string
	for try := 0; ; try++ {
		if try == 5 {
			t.Skip("could not fit a listing and a change into one second")
		}
		now := time.Now()
		// To the start of the next second, and a little beyond: the
		// kernel stamps files with a clock that lags by a tick.
		time.Sleep(now.Truncate(time.Second).Add(time.Second + 30*time.Millisecond).Sub(now))
		start := time.Now()
		writeRaw(t, filepath.Dir(other), fmt.Sprintf("cur/%d.M%dP1.other:2,", start.Unix(), try), "first", start)
		// The mount must show the new mtime before the listing (the
		// session revalidates before each Sync).
		for revalidate(t, curDir) != start.Unix() && time.Since(start) < 500*time.Millisecond {
			time.Sleep(10 * time.Millisecond) // polling the mount's attributes
		}
		mustSync(t, m, SyncOptions{})
		second = fmt.Sprintf("%d.M%dP2.other", start.Unix(), try)
		writeRaw(t, filepath.Dir(other), "cur/"+second+":2,S", "second", start)
		if time.Now().Truncate(time.Second).Equal(start.Truncate(time.Second)) {
			break
		}
	}
	found := func(snap *Snapshot) bool {
		for _, msg := range snap.Messages {
			if msg.Name.Unique == second {
				return true
			}
		}
		return false
	}
	begin := time.Now()
	deadline := begin.Add(8 * time.Second)
	sync := func() *Snapshot {
		revalidate(t, curDir)
		revalidate(t, newDir)
		return mustSync(t, m, SyncOptions{})
	}
	for !found(sync()) {
		if time.Now().After(deadline) {
			t.Fatalf("the file added in the listing's second is still hidden after %v (%d flushes)", time.Since(begin), flushes.Load())
		}
		time.Sleep(50 * time.Millisecond) // polling the spool, bounded by the deadline
	}
	t.Logf("seen after %v, %d flushes", time.Since(begin).Round(time.Millisecond), flushes.Load())
	if flushes.Load() == 0 {
		t.Error("the file showed without a flush: the test did not reproduce the stale listing")
	}
	// The guard settles (the last listings trusted) within a few seconds
	// and then flushes no more.
	settle := time.Now().Add(8 * time.Second)
	for s.opt.Listings.suspicious(curDir) || s.opt.Listings.suspicious(newDir) {
		if time.Now().After(settle) {
			t.Fatalf("new/ or cur/ still suspicious %v after the last change", time.Since(begin))
		}
		sync()
		time.Sleep(100 * time.Millisecond) // polling the spool, bounded by the deadline
	}
	n := flushes.Load()
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); {
		sync()
		time.Sleep(100 * time.Millisecond) // polling the spool for a while
	}
	if got := flushes.Load(); got != n {
		t.Errorf("%d more flushes after the directories settled", got-n)
	}
	t.Logf("%d flushes in all", flushes.Load())
}

// revalidate makes the mount fetch fresh attributes of path, as
// node/session does with statx(AT_STATX_FORCE_SYNC) before each Sync.
// It returns the mtime's second.
func revalidate(t *testing.T, path string) int64 {
	t.Helper()
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_STATX_FORCE_SYNC, unix.STATX_MTIME, &stx); err != nil {
		t.Fatal(err)
	}
	return stx.Mtime.Sec
}
