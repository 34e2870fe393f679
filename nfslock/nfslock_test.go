package nfslock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testLogger logs through t so a failing test shows what the lock did.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// tempFiles lists the ".temp." files left in dir.
func tempFiles(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

func hostname(t testing.TB) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestValidate(t *testing.T) {
	good := []Options{
		{},
		DefaultOptions(),
		{Timeout: time.Second, StaleAge: time.Second, Host: "mx1.example.org", MinBackoff: time.Millisecond, MaxBackoff: time.Second},
	}
	for i, o := range good {
		if err := o.Validate(); err != nil {
			t.Errorf("good %d: %v", i, err)
		}
	}
	bad := []Options{
		{Timeout: -1},
		{StaleAge: 500 * time.Millisecond},
		{StaleAge: -time.Second},
		{Host: "a:b"},
		{Host: "a/b"},
		{Host: "a b"},
		{Host: strings.Repeat("h", 256)},
		{MinBackoff: -1},
		{MaxBackoff: -1},
		{MinBackoff: 2 * time.Second, MaxBackoff: time.Second},
	}
	for i, o := range bad {
		if err := o.Validate(); err == nil {
			t.Errorf("bad %d (%+v): no error", i, o)
		}
		if _, err := Acquire(context.Background(), filepath.Join(t.TempDir(), "f"), o); err == nil {
			t.Errorf("bad %d: Acquire took the lock", i)
		}
	}
}

func TestAcquireRelease(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "dovecot-uidlist")
	l, err := Acquire(context.Background(), file, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if l.Path() != file+".lock" {
		t.Errorf("Path() = %q", l.Path())
	}
	data, err := os.ReadFile(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	o, ok := parseContent(data)
	if !ok || o.PID != os.Getpid() || o.Host != hostname(t) || o.Nonce == "" {
		t.Errorf("lock content %q parsed as %+v, %v", data, o, ok)
	}
	if !strings.HasPrefix(string(data), strconv.Itoa(os.Getpid())+":"+hostname(t)+":") {
		t.Errorf("lock content %q does not start with PID:HOST:", data)
	}
	if names := tempFiles(t, dir); len(names) != 0 {
		t.Errorf("temp files left while held: %v", names)
	}
	if err := l.Refresh(); err != nil {
		t.Errorf("Refresh: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(l.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file still there after Release: %v", err)
	}
	if err := l.Release(); !errors.Is(err, ErrReleased) {
		t.Errorf("second Release: %v, want ErrReleased", err)
	}
	if err := l.Refresh(); !errors.Is(err, ErrReleased) {
		t.Errorf("Refresh after Release: %v, want ErrReleased", err)
	}
	if names := tempFiles(t, dir); len(names) != 0 {
		t.Errorf("temp files left: %v", names)
	}
}

func TestAcquireMissingDir(t *testing.T) {
	_, err := Acquire(context.Background(), filepath.Join(t.TempDir(), "no", "such"), Options{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Acquire in a missing directory: %v, want ErrNotExist", err)
	}
}

// TestExclusionGoroutines checks that goroutines of one process exclude
// each other (they share host and pid, so only the link decides).
func TestExclusionGoroutines(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	var inside, total atomic.Int32
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				l, err := Acquire(context.Background(), file, Options{NoAutoRefresh: i%2 == 0})
				if err != nil {
					t.Error(err)
					return
				}
				if n := inside.Add(1); n != 1 {
					t.Errorf("%d holders at once", n)
				}
				total.Add(1)
				inside.Add(-1)
				if err := l.Release(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if total.Load() != 240 {
		t.Errorf("total %d, want 240", total.Load())
	}
}

// TestCounterProcesses: 4 processes increment a counter file 500 times
// each under the lock; no increment may be lost.
func TestCounterProcesses(t *testing.T) {
	n := 500
	if testing.Short() {
		n = 100
	}
	runCounter(t, []string{t.TempDir()}, 4, n, helperMarkEnv+"="+filepath.Join(t.TempDir(), "held"))
}

// TestKilledHolderSameHost: the holder, on this host, is SIGKILLed; its
// lock is taken over at once because its pid is gone.
func TestKilledHolderSameHost(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	h := startHolder(t, file, helperStaleEnv+"=1m")
	opt := Options{StaleAge: time.Minute, Timeout: 300 * time.Millisecond, Logger: testLogger(t)}
	if _, err := Acquire(context.Background(), file, opt); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Acquire while a live process holds the lock: %v, want ErrTimeout", err)
	}
	h.kill(t)
	start := time.Now()
	opt.Timeout = 10 * time.Second
	l, err := Acquire(context.Background(), file, opt)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("takeover of a dead process's lock took %v", d)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if names := tempFiles(t, filepath.Dir(file)); len(names) != 0 {
		// The killed holder's temp file was removed before it reported.
		t.Errorf("temp files left: %v", names)
	}
}

// TestKilledHolderForeignHost: a holder that claims another host name
// keeps its lock fresh while alive; once killed, the lock is broken after
// the stale age.
func TestKilledHolderForeignHost(t *testing.T) {
	const stale = time.Second
	file := filepath.Join(t.TempDir(), "f")
	h := startHolder(t, file, helperHostEnv+"=elsewhere.example", helperStaleEnv+"="+stale.String())
	opt := Options{StaleAge: stale, Timeout: 2500 * time.Millisecond, Logger: testLogger(t)}
	// Longer than the stale age: the holder's refreshes must keep it.
	if _, err := Acquire(context.Background(), file, opt); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Acquire while a refreshing holder lives: %v, want ErrTimeout", err)
	}
	h.kill(t)
	start := time.Now()
	opt.Timeout = 10 * time.Second
	l, err := Acquire(context.Background(), file, opt)
	if err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	// The last refresh was at most StaleAge/4 before the kill.
	if d < stale-stale/4-100*time.Millisecond || d > stale+2*time.Second {
		t.Errorf("stale lock broken after %v, want about %v", d, stale)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestForeignLockContent(t *testing.T) {
	// A pid that surely is gone: a child that exited and was reaped.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := cmd.ProcessState.Pid()

	tests := []struct {
		name      string
		content   string
		immediate bool // broken at once, not by age
	}{
		{"garbage", "\x00\xffnot a lock\n", false},
		{"empty", "", false},
		{"dovecot dead pid", strconv.Itoa(deadPID) + ":" + hostname(t), true},
		{"ours dead pid", strconv.Itoa(deadPID) + ":" + hostname(t) + ":0123abcd\n", true},
		{"dovecot other host", strconv.Itoa(deadPID) + ":elsewhere", false},
		{"pid zero", "0:" + hostname(t) + "\n", false},
		{"live pid", strconv.Itoa(os.Getppid()) + ":" + hostname(t) + ":ab\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(file+".lock", []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			opt := Options{StaleAge: time.Second, Timeout: 10 * time.Second, Logger: testLogger(t)}
			start := time.Now()
			l, err := Acquire(context.Background(), file, opt)
			if err != nil {
				t.Fatal(err)
			}
			d := time.Since(start)
			if tc.immediate && d > 500*time.Millisecond {
				t.Errorf("took %v, want an immediate takeover", d)
			}
			if !tc.immediate && d < 800*time.Millisecond {
				t.Errorf("broken after %v, before the stale age", d)
			}
			if err := l.Release(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestOldLockBrokenAtOnce: a lock whose mtime is far in the past is
// broken on first sight.
func TestOldLockBrokenAtOnce(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file+".lock", []byte("1:elsewhere:abc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(file+".lock", old, old); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	l, err := Acquire(context.Background(), file, Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("took %v", d)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

// TestFutureLockWaits: a lock with an mtime in the future (file server
// clock ahead) is still broken after the stale age of our own watching.
func TestFutureLockWaits(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file+".lock", []byte("1:elsewhere:abc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(file+".lock", future, future); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	l, err := Acquire(context.Background(), file, Options{StaleAge: time.Second, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
		t.Errorf("took %v, want about 1s", d)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestStolen(t *testing.T) {
	steals := map[string]func(t *testing.T, lockPath string){
		// Broken by someone else and retaken: a new inode.
		"replaced": func(t *testing.T, lockPath string) {
			if err := os.Remove(lockPath); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(lockPath, []byte("1:elsewhere:abc\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		// Same inode, other content.
		"rewritten": func(t *testing.T, lockPath string) {
			if err := os.WriteFile(lockPath, []byte("1:elsewhere:abc\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		"removed": func(t *testing.T, lockPath string) {
			if err := os.Remove(lockPath); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, steal := range steals {
		for _, young := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/young=%v", name, young), func(t *testing.T) {
				testStolen(t, steal, young)
			})
		}
		t.Run(name+"/verify", func(t *testing.T) { testVerifyStolen(t, steal) })
	}
}

// testVerifyStolen: Verify, unlike a young lock's Refresh, always reads
// the lock, so it finds a theft at once, however young the lock.
func testVerifyStolen(t *testing.T, steal func(t *testing.T, lockPath string)) {
	file := filepath.Join(t.TempDir(), "f")
	l, err := Acquire(context.Background(), file, Options{NoAutoRefresh: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Verify(); err != nil {
		t.Fatalf("Verify of our own lock: %v", err)
	}
	steal(t, l.Path())
	before, _ := os.ReadFile(l.Path())
	if err := l.Verify(); !errors.Is(err, ErrStolen) {
		t.Errorf("Verify: %v, want ErrStolen", err)
	}
	select {
	case <-l.Lost():
	default:
		t.Error("Lost not closed after Verify found the lock stolen")
	}
	if err := l.Verify(); !errors.Is(err, ErrStolen) {
		t.Errorf("second Verify: %v, want ErrStolen", err)
	}
	if err := l.Release(); !errors.Is(err, ErrStolen) {
		t.Errorf("Release: %v, want ErrStolen", err)
	}
	if after, _ := os.ReadFile(l.Path()); string(after) != string(before) {
		t.Errorf("the thief's lock changed: %q became %q", before, after)
	}
	if err := l.Verify(); !errors.Is(err, ErrReleased) {
		t.Errorf("Verify after Release: %v, want ErrReleased", err)
	}
}

// testStolen steals a held lock. A young lock's Refresh does nothing (it
// is skipped), so only Release can notice; an old one's Refresh must.
func testStolen(t *testing.T, steal func(t *testing.T, lockPath string), young bool) {
	file := filepath.Join(t.TempDir(), "f")
	l, err := Acquire(context.Background(), file, Options{NoAutoRefresh: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !young {
		l.touched = time.Now().Add(-time.Hour) // held for long
	}
	steal(t, l.Path())
	before, _ := os.ReadFile(l.Path())
	if young {
		if err := l.Refresh(); err != nil {
			t.Errorf("Refresh of a young lock: %v, want it skipped", err)
		}
	} else {
		if err := l.Refresh(); !errors.Is(err, ErrStolen) {
			t.Errorf("Refresh: %v, want ErrStolen", err)
		}
		select {
		case <-l.Lost():
		default:
			t.Error("Lost not closed")
		}
		if err := l.Refresh(); !errors.Is(err, ErrStolen) {
			t.Errorf("second Refresh: %v, want ErrStolen", err)
		}
	}
	if err := l.Release(); !errors.Is(err, ErrStolen) {
		t.Errorf("Release: %v, want ErrStolen", err)
	}
	after, _ := os.ReadFile(l.Path())
	if string(after) != string(before) {
		t.Errorf("Release touched the thief's lock: %q became %q", before, after)
	}
	if names := tempFiles(t, filepath.Dir(file)); len(names) != 0 {
		t.Errorf("temp files left: %v", names)
	}
	select {
	case <-l.Lost():
	default:
		t.Error("Lost not closed after Release found the lock stolen")
	}
}

func TestAutoRefresh(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	l, err := Acquire(context.Background(), file, Options{StaleAge: time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(l.Path(), old, old); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		fi, err := os.Stat(l.Path())
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(fi.ModTime()) < time.Minute {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lock not refreshed within 5s")
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	// Now steal it: the refresh goroutine must notice.
	if err := os.WriteFile(l.Path(), []byte("1:elsewhere:abc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("refresh goroutine did not notice the steal")
	}
	if err := l.Release(); !errors.Is(err, ErrStolen) {
		t.Errorf("Release: %v, want ErrStolen", err)
	}
}

func TestRefreshManual(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	l, err := Acquire(context.Background(), file, Options{NoAutoRefresh: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(l.Path(), old, old); err != nil {
		t.Fatal(err)
	}
	// Just taken: Refresh is skipped and leaves the mtime alone.
	if err := l.Refresh(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(l.Path()); err != nil {
		t.Fatal(err)
	} else if !fi.ModTime().Equal(old) {
		t.Errorf("young lock's Refresh changed the mtime to %v", fi.ModTime())
	}
	// Held past StaleAge/8: Refresh sets the mtime.
	l.touched = time.Now().Add(-DefaultStaleAge / 8)
	if err := l.Refresh(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(fi.ModTime()) > time.Minute {
		t.Errorf("mtime %v after Refresh", fi.ModTime())
	}
	if time.Since(l.touched) > time.Minute {
		t.Errorf("touched %v not updated by Refresh", l.touched)
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	held, err := Acquire(context.Background(), file, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()

	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		_, err := Acquire(context.Background(), file, Options{Timeout: 200 * time.Millisecond})
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("%v, want ErrTimeout", err)
		}
		if d := time.Since(start); d < 200*time.Millisecond || d > time.Second {
			t.Errorf("returned after %v", d)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		start := time.Now()
		stop := time.AfterFunc(100*time.Millisecond, cancel)
		defer stop.Stop()
		// A large back-off must not delay the return.
		_, err := Acquire(ctx, file, Options{MinBackoff: 5 * time.Second, MaxBackoff: 5 * time.Second, StaleAge: time.Hour})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%v, want context.Canceled", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("returned after %v", d)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		_, err := Acquire(ctx, file, Options{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("already canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Acquire(ctx, filepath.Join(t.TempDir(), "free"), Options{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%v, want context.Canceled", err)
		}
	})
}

func newTestAcquirer(t *testing.T, file string) *acquirer {
	o, err := Options{Logger: testLogger(t)}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return &acquirer{opt: o, log: o.Logger, host: o.Host, pid: os.Getpid(), path: file, lockPath: file + lockSuffix}
}

// TestBreakRace: a waiter judged a lock stale, but by the time it breaks it
// someone else has put a new lock there. The new lock must survive.
func TestBreakRace(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	lockPath := file + lockSuffix
	if err := os.WriteFile(lockPath, []byte("1:elsewhere:old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	judged, err := readSnapshot(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	// Another waiter breaks it and takes the lock.
	if err := os.Remove(lockPath); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lockPath, []byte("1:elsewhere:new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fresh, err := readSnapshot(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	a := newTestAcquirer(t, file)
	if err := a.removeIfSame(lockPath, judged, true); !errors.Is(err, errChanged) {
		t.Fatalf("removeIfSame: %v, want errChanged", err)
	}
	now, err := readSnapshot(lockPath)
	if err != nil {
		t.Fatalf("the new lock is gone: %v", err)
	}
	if now.ino != fresh.ino || string(now.content) != "1:elsewhere:new\n" {
		t.Errorf("the new lock changed: %+v", now)
	}
	// A refresh of the judged lock (same inode, new mtime) also saves it.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(lockPath, old, old); err != nil {
		t.Fatal(err)
	}
	judged, _ = readSnapshot(lockPath)
	if err := touchPath(lockPath); err != nil {
		t.Fatal(err)
	}
	if err := a.removeIfSame(lockPath, judged, true); !errors.Is(err, errChanged) {
		t.Fatalf("removeIfSame of a refreshed lock: %v, want errChanged", err)
	}
	// Gone entirely.
	if err := os.Remove(lockPath); err != nil {
		t.Fatal(err)
	}
	if err := a.removeIfSame(lockPath, judged, true); !errors.Is(err, errGone) {
		t.Fatalf("removeIfSame of a missing lock: %v, want errGone", err)
	}
	if names := tempFiles(t, dir); len(names) != 0 {
		t.Errorf("temp files left: %v", names)
	}
}

// TestLostLinkReply: the link was made but its reply was lost, so link
// reports EEXIST; the link count of the temp file shows the lock is ours.
func TestLostLinkReply(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	a := newTestAcquirer(t, file)
	temp, own, err := a.createTemp()
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(temp)
	if err := os.Link(temp, a.lockPath); err != nil { // the "first" request
		t.Fatal(err)
	}
	ok, err := a.tryLink(temp, own)
	if err != nil || !ok {
		t.Fatalf("tryLink = %v, %v; want the lock", ok, err)
	}
	// Someone else's lock: link count stays 1, not ours.
	if err := os.Remove(a.lockPath); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.lockPath, []byte("1:elsewhere:x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok, err = a.tryLink(temp, own)
	if err != nil || ok {
		t.Fatalf("tryLink on a held lock = %v, %v; want false, nil", ok, err)
	}
}

func TestBackoff(t *testing.T) {
	a := newTestAcquirer(t, "x")
	a.opt.MinBackoff, a.opt.MaxBackoff = 2*time.Millisecond, 100*time.Millisecond
	for n := 0; n < 20; n++ {
		d := a.backoff(n)
		hi := min(a.opt.MinBackoff<<n, a.opt.MaxBackoff)
		if n > 10 {
			hi = a.opt.MaxBackoff
		}
		if d < hi/2 || d > hi {
			t.Errorf("backoff(%d) = %v, want in [%v, %v]", n, d, hi/2, hi)
		}
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	for _, auto := range []bool{false, true} {
		name := "no-auto-refresh"
		if auto {
			name = "auto-refresh"
		}
		b.Run(name, func(b *testing.B) {
			file := filepath.Join(b.TempDir(), "f")
			opt := Options{NoAutoRefresh: !auto}
			b.ReportAllocs()
			for b.Loop() {
				l, err := Acquire(context.Background(), file, opt)
				if err != nil {
					b.Fatal(err)
				}
				if err := l.Release(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestOnAcquire checks that the callback is called once per Acquire with
// the time the call took and its result: at once for a free lock, after the
// timeout for a held one, and for a release that lets a waiter in.
func TestOnAcquire(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	type call struct {
		waited time.Duration
		err    error
	}
	var mu sync.Mutex
	var calls []call
	opt := Options{OnAcquire: func(waited time.Duration, err error) {
		mu.Lock()
		calls = append(calls, call{waited, err})
		mu.Unlock()
	}}
	last := func(t *testing.T, want int) call {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if len(calls) != want {
			t.Fatalf("%d calls, want %d", len(calls), want)
		}
		return calls[len(calls)-1]
	}

	start := time.Now()
	held, err := Acquire(context.Background(), file, opt)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if c := last(t, 1); c.err != nil || c.waited <= 0 || c.waited > took {
		t.Fatalf("free lock: %+v (Acquire took %v)", c, took)
	}

	timeout := opt
	timeout.Timeout = 200 * time.Millisecond
	if _, err := Acquire(context.Background(), file, timeout); !errors.Is(err, ErrTimeout) {
		t.Fatalf("%v, want ErrTimeout", err)
	}
	if c := last(t, 2); !errors.Is(c.err, ErrTimeout) || c.waited < timeout.Timeout {
		t.Fatalf("held lock: %+v, want ErrTimeout after at least %v", c, timeout.Timeout)
	}

	// A waiter that gets the lock when the holder releases it: the
	// release happens after the waiter started, so its wait covers it.
	got := make(chan error, 1)
	go func() {
		l, err := Acquire(context.Background(), file, Options{OnAcquire: opt.OnAcquire, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
		if err == nil {
			err = l.Release()
		}
		got <- err
	}()
	// The waiter's temp file appears when its Acquire has begun; release
	// after that, so its wait covers at least the time in between.
	deadline := time.Now().Add(5 * time.Second)
	for len(tempFiles(t, filepath.Dir(file))) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the waiter never started")
		}
		runtime.Gosched()
	}
	began := time.Now()
	if err := held.Release(); err != nil {
		t.Fatal(err)
	}
	released := time.Now()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if c := last(t, 3); c.err != nil || c.waited < released.Sub(began) {
		t.Fatalf("waiter: %+v, want a wait of at least %v", c, released.Sub(began))
	}

	// Invalid options still report once.
	bad := opt
	bad.Timeout = -1
	if _, err := Acquire(context.Background(), file, bad); err == nil {
		t.Fatal("invalid options accepted")
	}
	if c := last(t, 4); c.err == nil {
		t.Fatalf("invalid options: %+v", c)
	}
}
