package nfslock

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/nfsimap/nfsimap/internal/nfstest"
)

// TestCounterOnMounts runs the counter test on two NFS-like mounts of one
// directory, two processes on each, like two nodes sharing a filer.
func TestCounterOnMounts(t *testing.T) {
	tests := []struct {
		name   string
		faults nfstest.Faults
		n      int
	}{
		{"close-to-open", nfstest.Faults{}, 50},
		{"non-atomic-excl", nfstest.Faults{NonAtomicExcl: true}, 50},
		{"coarse-mtime", nfstest.Faults{CoarseMtime: true}, 25},
		{"estale", nfstest.Faults{EStaleRate: 0.05}, 25},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			backing := t.TempDir()
			a := nfstest.MountT(t, backing, nfstest.Options{Seed: 1})
			b := nfstest.MountT(t, backing, nfstest.Options{Seed: 2})
			a.SetFaults(tc.faults)
			b.SetFaults(tc.faults)
			mark := filepath.Join(t.TempDir(), "held")
			runCounter(t, []string{a.Dir, b.Dir}, 4, tc.n, helperMarkEnv+"="+mark)
			ca, cb := a.Counters(), b.Counters()
			t.Logf("mount A: %d links, %d renames, %d unlinks, %d ESTALE; mount B: %d links, %d renames, %d unlinks, %d ESTALE",
				ca.Link, ca.Rename, ca.Unlink, ca.EStale, cb.Link, cb.Rename, cb.Unlink, cb.EStale)
			if ca.Link == 0 || cb.Link == 0 {
				t.Errorf("no link reached a mount: %d, %d", ca.Link, cb.Link)
			}
		})
	}
}

// TestRefreshAcrossMounts: a holder on one mount keeps its lock alive by
// refreshing it, also with whole-second mtimes, and a waiter on the other
// mount breaks it only after the holder is killed and the stale age passed.
func TestRefreshAcrossMounts(t *testing.T) {
	const stale = time.Second
	backing := t.TempDir()
	a := nfstest.MountT(t, backing, nfstest.Options{Seed: 1})
	b := nfstest.MountT(t, backing, nfstest.Options{Seed: 2})
	a.SetFaults(nfstest.Faults{CoarseMtime: true})
	b.SetFaults(nfstest.Faults{CoarseMtime: true})

	h := startHolder(t, filepath.Join(a.Dir, "f"), helperHostEnv+"=node-a", helperStaleEnv+"="+stale.String())
	file := filepath.Join(b.Dir, "f")
	opt := Options{Host: "node-b", StaleAge: stale, Timeout: 3 * time.Second, Logger: testLogger(t)}
	if _, err := Acquire(context.Background(), file, opt); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Acquire while the holder refreshes: %v, want ErrTimeout", err)
	}
	h.kill(t)
	start := time.Now()
	opt.Timeout = 10 * time.Second
	l, err := Acquire(context.Background(), file, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("broken %v after the kill", time.Since(start).Round(time.Millisecond))
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if c := b.Counters(); c.CoarseMtime == 0 {
		t.Error("no coarse mtime was seen")
	}
}

// TestRequestsPerCycle counts what one uncontended Acquire, Refresh,
// Release cycle costs the file server (what a uidlist update does): about
// 16 requests, down from 23 before the plain system calls, the single read
// at Release and the skipped refresh of a young lock.
func TestRequestsPerCycle(t *testing.T) {
	m := nfstest.MountT(t, t.TempDir(), nfstest.Options{})
	file := filepath.Join(m.Dir, "f")
	const cycles = 20
	m.ResetCounters()
	for range cycles {
		l, err := Acquire(context.Background(), file, Options{NoAutoRefresh: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Refresh(); err != nil { // skipped: the lock is young
			t.Fatal(err)
		}
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
	}
	c := m.Counters()
	total := c.Lookup + c.Getattr + c.Open + c.Read + c.Write + c.Create + c.Link + c.Rename + c.Unlink + c.Setattr + c.Flush + c.Release + c.Access
	t.Logf("per cycle: %.1f requests (lookup %.1f, getattr %.1f, open %.1f, read %.1f, write %.1f, create %.1f, link %.1f, rename %.1f, unlink %.1f, flush %.1f, release %.1f)",
		float64(total)/cycles, float64(c.Lookup)/cycles, float64(c.Getattr)/cycles, float64(c.Open)/cycles, float64(c.Read)/cycles,
		float64(c.Write)/cycles, float64(c.Create)/cycles, float64(c.Link)/cycles, float64(c.Rename)/cycles, float64(c.Unlink)/cycles,
		float64(c.Flush)/cycles, float64(c.Release)/cycles)
	if c.Link != cycles || c.Rename != cycles || c.Unlink != 2*cycles {
		t.Errorf("links %d, renames %d, unlinks %d for %d cycles", c.Link, c.Rename, c.Unlink, cycles)
	}
	if c.Setattr != 0 {
		t.Errorf("%d setattr requests: a young lock's Refresh must be skipped", c.Setattr)
	}
	if per := total / cycles; per > 18 {
		t.Errorf("%d requests per lock cycle", per)
	}
}
