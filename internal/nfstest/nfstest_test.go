package nfstest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// short cache timeouts keep the tests fast; the assertions that something
// is NOT yet visible run right after the change, well inside the window.
const short = 400 * time.Millisecond

func shortOptions() Options {
	return Options{AttrTimeout: short, EntryTimeout: short, NegativeTimeout: short, Seed: 1}
}

// twoMounts mounts one fresh backing directory twice, as nodes A and B.
func twoMounts(t *testing.T, opt Options) (backing string, a, b *Mount) {
	t.Helper()
	backing = t.TempDir()
	a = MountT(t, backing, opt)
	b = MountT(t, backing, opt)
	return backing, a, b
}

// waitFor polls cond until it holds or the deadline passes, and returns how
// long it took.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not after %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func visible(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("readdir %s: %v", dir, err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAvailable(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("FUSE not available: %v", err)
	}
}

func TestNegativeLookupCached(t *testing.T) {
	_, a, b := twoMounts(t, shortOptions())
	bp := filepath.Join(b.Dir, "f")
	if visible(bp) {
		t.Fatal("f exists before creation")
	}
	writeFile(t, filepath.Join(a.Dir, "f"), "hello")
	before := b.Counters()
	// Inside the negative-entry window B must still miss it, and its
	// kernel must not even ask the server.
	if visible(bp) {
		t.Fatal("B saw the new file at once: negative lookups are not cached")
	}
	if d := b.Counters().Sub(before); d.Lookup != 0 {
		t.Errorf("cached negative lookup reached the server: %d LOOKUPs", d.Lookup)
	}
	took := waitFor(t, 5*short, "B sees f", func() bool { return visible(bp) })
	t.Logf("B saw the file after %v", took)
}

func TestReaddirCached(t *testing.T) {
	for _, cacheDir := range []bool{true, false} {
		t.Run(fmt.Sprintf("CacheDir=%v", cacheDir), func(t *testing.T) {
			opt := shortOptions()
			opt.CacheDir = cacheDir
			backing, a, b := twoMounts(t, opt)
			writeFile(t, filepath.Join(backing, "one"), "1")
			if got := names(t, b.Dir); !slices.Equal(got, []string{"one"}) {
				t.Fatalf("B lists %v", got)
			}
			writeFile(t, filepath.Join(a.Dir, "two"), "2")
			before := b.Counters()
			got := names(t, b.Dir)
			d := b.Counters().Sub(before)
			if cacheDir {
				if slices.Contains(got, "two") {
					t.Fatalf("B listed the new file at once despite the directory cache: %v", got)
				}
				if d.Readdir != 0 {
					t.Errorf("cached listing reached the server: %d READDIRs", d.Readdir)
				}
				took := waitFor(t, 5*short, "B lists two", func() bool { return slices.Contains(names(t, b.Dir), "two") })
				t.Logf("B listed the file after %v", took)
			} else {
				if !slices.Contains(got, "two") {
					t.Fatalf("without the directory cache B must list the new file: %v", got)
				}
				if d.Readdir == 0 {
					t.Errorf("uncached listing did not reach the server")
				}
			}
		})
	}
}

func TestDirMtimeCached(t *testing.T) {
	_, a, b := twoMounts(t, shortOptions())
	dir := "d"
	if err := os.Mkdir(filepath.Join(a.Dir, dir), 0o755); err != nil {
		t.Fatal(err)
	}
	st0, err := os.Stat(filepath.Join(b.Dir, dir))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(a.Dir, dir, "new"), "x")
	st1, err := os.Stat(filepath.Join(b.Dir, dir))
	if err != nil {
		t.Fatal(err)
	}
	if !st1.ModTime().Equal(st0.ModTime()) {
		t.Fatalf("B saw the new directory mtime at once (%v -> %v): attributes not cached", st0.ModTime(), st1.ModTime())
	}
	took := waitFor(t, 5*short, "B sees the new dir mtime", func() bool {
		st, err := os.Stat(filepath.Join(b.Dir, dir))
		return err == nil && !st.ModTime().Equal(st0.ModTime())
	})
	t.Logf("B saw the new mtime after %v", took)
}

func TestRenamedOldNameStillVisible(t *testing.T) {
	_, a, b := twoMounts(t, shortOptions())
	writeFile(t, filepath.Join(a.Dir, "old"), "x")
	if !visible(filepath.Join(b.Dir, "old")) {
		t.Fatal("B does not see old")
	}
	if err := os.Rename(filepath.Join(a.Dir, "old"), filepath.Join(a.Dir, "new")); err != nil {
		t.Fatal(err)
	}
	if !visible(filepath.Join(b.Dir, "old")) {
		t.Fatal("B lost the old name at once: entries not cached")
	}
	waitFor(t, 5*short, "old name gone on B", func() bool { return !visible(filepath.Join(b.Dir, "old")) })
}

func TestLocksNotShared(t *testing.T) {
	backing, a, b := twoMounts(t, shortOptions())
	writeFile(t, filepath.Join(backing, "lock"), "")
	open := func(m *Mount) *os.File {
		f, err := os.OpenFile(filepath.Join(m.Dir, "lock"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	fa, fa2, fb := open(a), open(a), open(b)
	if err := unix.Flock(int(fa.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("flock through A: %v", err)
	}
	// Inside one mount the lock works ...
	if err := unix.Flock(int(fa2.Fd()), unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("second flock through A: got %v, want EWOULDBLOCK", err)
	}
	// ... but B does not see it (NFS without lockd).
	if err := unix.Flock(int(fb.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("flock through B while A holds it: %v (locks are shared between mounts)", err)
	}
	// The same for fcntl (open file description) locks.
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(fa.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		t.Fatalf("fcntl lock through A: %v", err)
	}
	if err := unix.FcntlFlock(fa2.Fd(), unix.F_OFD_SETLK, &lk); !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES) {
		t.Fatalf("second fcntl lock through A: got %v, want EAGAIN", err)
	}
	if err := unix.FcntlFlock(fb.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		t.Fatalf("fcntl lock through B while A holds it: %v", err)
	}
	if c := a.Counters(); c.Other != 0 {
		t.Errorf("lock requests reached the server: %+v", c)
	}
}

func TestCountersOpenRead(t *testing.T) {
	backing := t.TempDir()
	data := bytes.Repeat([]byte("0123456789"), 1234)
	if err := os.WriteFile(filepath.Join(backing, "msg"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	m := MountT(t, backing, shortOptions())
	m.ResetCounters()
	got, err := os.ReadFile(filepath.Join(m.Dir, "msg"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read through mount: %v", err)
	}
	c := m.Counters()
	if c.Open != 1 || c.ReadBytes != int64(len(data)) || c.Lookup != 1 || c.Create != 0 || c.Write != 0 || c.EStale != 0 {
		t.Errorf("open+read of %d bytes counted %+v", len(data), c)
	}

	m.ResetCounters()
	f, err := os.OpenFile(filepath.Join(m.Dir, "new"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data[:3000]); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(m.Dir, "new"), filepath.Join(m.Dir, "cur")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(m.Dir, "cur")); err != nil {
		t.Fatal(err)
	}
	c = m.Counters()
	if c.Create != 1 || c.Open != 0 || c.Write < 1 || c.WriteBytes != 3000 || c.Fsync != 1 || c.Rename != 1 || c.Unlink != 1 {
		t.Errorf("create+write+fsync+rename+unlink counted %+v", c)
	}
	m.ResetCounters()
	if z := m.Counters(); z != (Counters{}) {
		t.Errorf("after reset: %+v", z)
	}
}

// TestCountersCaching shows that the counters see only what the kernel's
// caches let through, which is what a filer would see.
func TestCountersCaching(t *testing.T) {
	backing := t.TempDir()
	writeFile(t, filepath.Join(backing, "f"), "x")
	opt := shortOptions()
	opt.AttrTimeout, opt.EntryTimeout = 5*time.Second, 5*time.Second
	m := MountT(t, backing, opt)
	p := filepath.Join(m.Dir, "f")
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	first := m.Counters()
	if first.Lookup != 1 {
		t.Errorf("first stat: %d LOOKUPs, want 1", first.Lookup)
	}
	for range 100 {
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
	}
	if d := m.Counters().Sub(first); d != (Counters{}) {
		t.Errorf("100 cached stats reached the server: %+v", d)
	}
	// A missing name: one LOOKUP, then the negative entry answers.
	m.ResetCounters()
	for range 10 {
		if _, err := os.Stat(filepath.Join(m.Dir, "missing")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("stat of a missing file: %v", err)
		}
	}
	if c := m.Counters(); c.Lookup != 1 {
		t.Errorf("10 stats of a missing name: %d LOOKUPs, want 1", c.Lookup)
	}
}

func TestCloseToOpen(t *testing.T) {
	backing := t.TempDir()
	opt := shortOptions()
	opt.AttrTimeout = 5 * time.Second // long, so only open() can refresh
	opt.EntryTimeout = 5 * time.Second
	bp := filepath.Join(backing, "f")
	writeFile(t, bp, "version-1")
	a := MountT(t, backing, opt)
	ap := filepath.Join(a.Dir, "f")
	read := func() string {
		t.Helper()
		b, err := os.ReadFile(ap)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// Another node rewrites the file in place (same size).
	rewrite := func(s string) {
		t.Helper()
		f, err := os.OpenFile(bp, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte(s), 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := read(); got != "version-1" {
		t.Fatalf("read %q", got)
	}
	rewrite("version-2")
	if got := read(); got != "version-2" {
		t.Fatalf("close-to-open: reopen read %q, want version-2", got)
	}
	if c := a.Counters(); c.KeptCache != 0 {
		t.Errorf("KeptCache = %d without the fault", c.KeptCache)
	}

	a.SetFaults(Faults{NoCloseToOpen: true})
	if got := read(); got != "version-2" {
		t.Fatalf("read %q", got)
	}
	rewrite("version-3")
	if got := read(); got != "version-2" {
		t.Fatalf("NoCloseToOpen: reopen read %q, want the stale version-2", got)
	}
	if c := a.Counters(); c.KeptCache != 2 {
		t.Errorf("KeptCache = %d, want 2", c.KeptCache)
	}
	// The chown(path, -1, -1) trick revalidates, as on NFS: the SETATTR
	// reply shows the new mtime and the cached data goes.
	if err := os.Chown(ap, -1, -1); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "version-3" {
		t.Fatalf("NoCloseToOpen after chown(-1, -1): read %q, want version-3", got)
	}
	rewrite("version-4")
	a.SetFaults(Faults{})
	if got := read(); got != "version-4" {
		t.Fatalf("close-to-open again: read %q, want version-4", got)
	}
}

func TestEStale(t *testing.T) {
	backing := t.TempDir()
	writeFile(t, filepath.Join(backing, "f"), "x")
	m := MountT(t, backing, Options{AttrTimeout: -1, EntryTimeout: -1, NegativeTimeout: -1, Seed: 7})
	p := filepath.Join(m.Dir, "f")
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	m.SetFaults(Faults{EStaleRate: 1})
	if _, err := os.Stat(p); !errors.Is(err, syscall.ESTALE) {
		t.Fatalf("stat with EStaleRate 1: %v, want ESTALE", err)
	}
	if _, err := os.ReadFile(p); !errors.Is(err, syscall.ESTALE) {
		t.Fatalf("read with EStaleRate 1: %v, want ESTALE", err)
	}
	if c := m.Counters(); c.EStale < 2 {
		t.Errorf("EStale = %d", c.EStale)
	}

	m.SetFaults(Faults{EStaleRate: 0.5})
	m.ResetCounters()
	var failed, ok int
	for range 200 {
		_, err := os.ReadFile(p)
		switch {
		case err == nil:
			ok++
		case errors.Is(err, syscall.ESTALE):
			failed++
		default:
			t.Fatalf("read: %v", err)
		}
	}
	c := m.Counters()
	t.Logf("EStaleRate 0.5: %d reads failed, %d succeeded, %d ESTALE injected", failed, ok, c.EStale)
	if failed == 0 || ok == 0 || c.EStale < int64(failed) {
		t.Errorf("EStaleRate 0.5: %d failed, %d ok, EStale %d", failed, ok, c.EStale)
	}

	m.SetFaults(Faults{})
	if _, err := os.ReadFile(p); err != nil {
		t.Fatalf("after the fault: %v", err)
	}
}

func TestDelayNewEntries(t *testing.T) {
	const delay = 600 * time.Millisecond
	opt := Options{AttrTimeout: 50 * time.Millisecond, EntryTimeout: 50 * time.Millisecond, NegativeTimeout: 50 * time.Millisecond, Seed: 3}
	_, a, b := twoMounts(t, opt)
	a.SetFaults(Faults{DelayNewEntries: delay})
	b.SetFaults(Faults{DelayNewEntries: delay})
	writeFile(t, filepath.Join(a.Dir, "old"), "x")
	if !visible(filepath.Join(a.Dir, "old")) {
		t.Fatal("A does not see its own new file")
	}
	created := time.Now()
	// A mount that never saw "old" hides it while it is new.
	if visible(filepath.Join(b.Dir, "old")) || slices.Contains(names(t, b.Dir), "old") {
		t.Fatal("B saw the new entry at once")
	}
	if c := b.Counters(); c.Hidden < 2 {
		t.Errorf("Hidden = %d, want >= 2 (lookup and readdir)", c.Hidden)
	}
	waitFor(t, 3*delay, "B sees old", func() bool { return visible(filepath.Join(b.Dir, "old")) })
	if waited := time.Since(created); waited < delay/2 {
		t.Errorf("entry visible after %v, delay is %v", waited, delay)
	}
	if !slices.Contains(names(t, b.Dir), "old") {
		t.Error("B's listing misses old after the delay")
	}
	// Once shown, an entry stays visible even when its inode changes.
	if err := os.Chmod(filepath.Join(a.Dir, "old"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let B's 50 ms caches expire; old must stay visible throughout
	if !visible(filepath.Join(b.Dir, "old")) {
		t.Error("a seen entry disappeared after chmod")
	}
	// Fault off: new entries are visible at once (beyond the caches).
	b.SetFaults(Faults{})
	writeFile(t, filepath.Join(a.Dir, "later"), "y")
	waitFor(t, 5*opt.NegativeTimeout, "B sees later", func() bool { return visible(filepath.Join(b.Dir, "later")) })
}

func TestNonAtomicExcl(t *testing.T) {
	opt := shortOptions()
	_, a, b := twoMounts(t, opt)
	race := func(name string) (wins int) {
		start := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, m := range []*Mount{a, b} {
			wg.Go(func() {
				<-start
				f, err := os.OpenFile(filepath.Join(m.Dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
				if err == nil {
					f.Close()
					mu.Lock()
					wins++
					mu.Unlock()
				} else if !errors.Is(err, os.ErrExist) {
					t.Errorf("O_EXCL create: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		return wins
	}
	for i := range 50 {
		if w := race(fmt.Sprintf("atomic-%d", i)); w != 1 {
			t.Fatalf("round %d: %d winners with atomic O_EXCL", i, w)
		}
	}
	a.SetFaults(Faults{NonAtomicExcl: true})
	b.SetFaults(Faults{NonAtomicExcl: true})
	double := 0
	for i := 0; i < 300 && double == 0; i++ {
		w := race(fmt.Sprintf("racy-%d", i))
		if w == 0 {
			t.Fatalf("round %d: nobody won", i)
		}
		if w == 2 {
			double++
			t.Logf("both mounts won O_EXCL in round %d", i)
		}
	}
	if double == 0 {
		t.Fatal("NonAtomicExcl: no double win in 300 rounds")
	}
	ca, cb := a.Counters(), b.Counters()
	if ca.ExclRace+cb.ExclRace == 0 || ca.ExclNonAtomic == 0 || cb.ExclNonAtomic == 0 {
		t.Errorf("hit counters: A %+v B %+v", ca, cb)
	}
}

func TestCoarseMtime(t *testing.T) {
	backing := t.TempDir()
	bp := filepath.Join(backing, "f")
	writeFile(t, bp, "x")
	mt := time.Unix(1700000000, 123456789)
	if err := os.Chtimes(bp, mt, mt); err != nil {
		t.Fatal(err)
	}
	_, a, b := func() (string, *Mount, *Mount) {
		return backing, MountT(t, backing, shortOptions()), MountT(t, backing, shortOptions())
	}()
	a.SetFaults(Faults{CoarseMtime: true})
	sa, err := os.Stat(filepath.Join(a.Dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := os.Stat(filepath.Join(b.Dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if !sa.ModTime().Equal(time.Unix(1700000000, 0)) {
		t.Errorf("CoarseMtime: mtime %v, want whole seconds", sa.ModTime())
	}
	if !sb.ModTime().Equal(mt) {
		t.Errorf("without the fault: mtime %v, want %v", sb.ModTime(), mt)
	}
	if c := a.Counters(); c.CoarseMtime == 0 {
		t.Error("CoarseMtime hit counter is 0")
	}
	if c := b.Counters(); c.CoarseMtime != 0 {
		t.Errorf("CoarseMtime counted %d without the fault", c.CoarseMtime)
	}
}

func TestSillyRename(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("SillyRename=%v", on), func(t *testing.T) {
			backing := t.TempDir()
			writeFile(t, filepath.Join(backing, "f"), "still here")
			m := MountT(t, backing, shortOptions())
			m.SetFaults(Faults{SillyRename: on})
			f, err := os.Open(filepath.Join(m.Dir, "f"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := os.Remove(filepath.Join(m.Dir, "f")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			n, err := f.ReadAt(buf, 0)
			if string(buf[:n]) != "still here" {
				t.Fatalf("read of the unlinked open file: %q, %v", buf[:n], err)
			}
			left := names(t, backing)
			if visible(filepath.Join(m.Dir, "f")) {
				t.Error("f still visible through the mount")
			}
			if !on {
				if len(left) != 0 {
					t.Fatalf("without silly rename the backing dir holds %v", left)
				}
				return
			}
			if len(left) != 1 || len(left[0]) != 20 || left[0][:4] != ".nfs" {
				t.Fatalf("backing dir holds %v, want one .nfsXXXX file", left)
			}
			if c := m.Counters(); c.SillyRename != 1 {
				t.Errorf("SillyRename = %d", c.SillyRename)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			// The .nfs file goes at close(2) (FLUSH), as on NFS.
			if left := names(t, backing); len(left) != 0 {
				t.Fatalf("after the last close the backing dir holds %v", left)
			}
			// A file closed just before its unlink is not renamed,
			// even though RELEASE may still be on its way.
			writeFile(t, filepath.Join(m.Dir, "g"), "closed")
			if err := os.Remove(filepath.Join(m.Dir, "g")); err != nil {
				t.Fatal(err)
			}
			if left := names(t, backing); len(left) != 0 {
				t.Fatalf("unlink of a closed file left %v", left)
			}
			if c := m.Counters(); c.SillyRename != 1 {
				t.Errorf("SillyRename = %d after unlinking a closed file", c.SillyRename)
			}
		})
	}
}

func TestUnmountBusy(t *testing.T) {
	backing := t.TempDir()
	writeFile(t, filepath.Join(backing, "f"), "x")
	m, err := func() (*Mount, error) {
		if err := Available(); err != nil {
			t.Skip(err)
		}
		return New(backing, t.TempDir(), shortOptions())
	}()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(m.Dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	done := make(chan error, 1)
	go func() { done <- m.Unmount() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("unmount with an open file: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("unmount with an open file hangs")
	}
	if err := m.Unmount(); err != nil {
		t.Errorf("second Unmount: %v", err)
	}
}

func TestUnmountStale(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	// Only mounts without a server are touched; ours must survive.
	m := MountT(t, t.TempDir(), shortOptions())
	if _, err := UnmountStale(t.Logf); err != nil {
		t.Logf("UnmountStale: %v", err)
	}
	if _, err := os.ReadDir(m.Dir); err != nil {
		t.Fatalf("live mount damaged by UnmountStale: %v", err)
	}
}

func TestParseMountinfo(t *testing.T) {
	mp, ok := parseMountinfo(`36 35 0:52 / /tmp/a\040b rw,nosuid,nodev,relatime - fuse.nfstest nfstest-1:/x rw,user_id=0`)
	if !ok || mp != "/tmp/a b" {
		t.Errorf("got %q %v", mp, ok)
	}
	if _, ok := parseMountinfo(`36 35 0:52 / /tmp/x rw - ext4 /dev/sda rw`); ok {
		t.Error("ext4 line taken as ours")
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add(`36 35 0:52 / /tmp/a\040b rw,nosuid - fuse.nfstest src rw`)
	f.Add(`1 2 3 - fuse.nfstest`)
	f.Add(`\\\`)
	f.Fuzz(func(t *testing.T, line string) {
		mp, ok := parseMountinfo(line)
		if !ok && mp != "" {
			t.Errorf("mount point %q for a rejected line", mp)
		}
	})
}
