package maildir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nfsimap/nfsimap/internal/nfstest"
)

// TestNFSMounts runs the concurrent workers through several NFS-like FUSE
// mounts of one spool (one mount per simulated node, each with its own
// kernel caches), with the NFS faults switched on, and checks the spool
// afterwards: no message lost or doubled, UIDs unique and stable.
func TestNFSMounts(t *testing.T) {
	if err := nfstest.Available(); err != nil {
		t.Skipf("no FUSE here: %v", err)
	}
	variants := []struct {
		name   string
		faults nfstest.Faults
	}{
		{"plain", nfstest.Faults{}},
		{"delayed-entries+coarse-mtime", nfstest.Faults{DelayNewEntries: 1500 * time.Millisecond, CoarseMtime: true}},
		{"estale", nfstest.Faults{EStaleRate: 0.05}},
		{"silly-rename", nfstest.Faults{SillyRename: true}},
		{"nocto", nfstest.Faults{NoCloseToOpen: true}},
		{"everything", nfstest.Faults{NoCloseToOpen: true, EStaleRate: 0.02, DelayNewEntries: time.Second, CoarseMtime: true, SillyRename: true, NonAtomicExcl: true}},
	}
	iters := 40
	if v, err := strconv.Atoi(os.Getenv("NFSIMAP_MAILDIR_NFS_ITERS")); err == nil && v > 0 {
		iters = v // longer runs by hand
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			backing := t.TempDir()
			for _, sub := range []string{"cur", "new", "tmp"} {
				if err := os.MkdirAll(filepath.Join(backing, "Maildir", sub), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			const nodes, perNode = 3, 2
			seed := time.Now().UnixNano()
			t.Logf("seed %d", seed)
			var mounts []*nfstest.Mount
			var traceMu sync.Mutex
			var trace []string
			for n := 0; n < nodes; n++ {
				n := n
				mt := nfstest.MountT(t, backing, nfstest.Options{CacheDir: true, Seed: seed + int64(n), Trace: func(op string, pid uint32, paths ...string) {
					traceMu.Lock()
					trace = append(trace, fmt.Sprintf("%s mount%d %s %v", time.Now().Format("15:04:05.000000"), n, op, paths))
					traceMu.Unlock()
				}})
				mt.SetFaults(v.faults)
				mounts = append(mounts, mt)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			var logs []*workerLog
			for n, mt := range mounts {
				for g := 0; g < perNode; g++ {
					wg.Add(1)
					go func(id int, dir string) {
						defer wg.Done()
						l, err := runWorker(context.Background(), t, dir, id, iters, seed+int64(id))
						if err != nil {
							t.Errorf("worker %d: %v", id, err)
						}
						if l != nil {
							mu.Lock()
							logs = append(logs, l)
							mu.Unlock()
						}
					}(n*10+g, filepath.Join(mt.Dir, "Maildir"))
				}
			}
			wg.Wait()
			for i, mt := range mounts {
				t.Logf("mount %d: %+v", i, mt.Counters())
			}
			if t.Failed() {
				return
			}
			checkLogs(t, filepath.Join(backing, "Maildir"), logs)
			if t.Failed() {
				for _, l := range trace {
					t.Log("TRACE " + l)
				}
			}
		})
	}
}

// TestNFSOpCounts counts what the filer sees for the common cases: a
// STATUS-like check of an unchanged mailbox must not list or read.
func TestNFSOpCounts(t *testing.T) {
	if err := nfstest.Available(); err != nil {
		t.Skipf("no FUSE here: %v", err)
	}
	ctx := context.Background()
	backing := t.TempDir()
	setup := mustMailbox(t, newTestStore(t, filepath.Join(backing, "Maildir")), "INBOX")
	for i := 0; i < 200; i++ {
		if _, err := setup.Deliver(ctx, strings.NewReader(fmt.Sprintf("m%d\n", i))); err != nil {
			t.Fatal(err)
		}
	}
	mt := nfstest.MountT(t, backing, nfstest.Options{CacheDir: true})
	opt := testOptions(t)
	opt.Now = func() time.Time { return time.Now().Add(time.Minute) }
	s, err := New(Paths{Inbox: filepath.Join(mt.Dir, "Maildir")}, opt)
	if err != nil {
		t.Fatal(err)
	}
	m := mustMailbox(t, s, "INBOX")
	measure := func(name string, f func()) nfstest.Counters {
		mt.ResetCounters()
		f()
		c := mt.Counters()
		t.Logf("%s: lookup %d getattr %d readdir %d open %d read %d create %d rename %d link %d unlink %d setattr %d fsync %d",
			name, c.Lookup, c.Getattr, c.Readdir, c.Open, c.Read, c.Create, c.Rename, c.Link, c.Unlink, c.Setattr, c.Fsync)
		return c
	}
	measure("first sync (assigns 200 UIDs)", func() { mustSync(t, m, SyncOptions{}) })
	measure("sync, unchanged", func() { mustSync(t, m, SyncOptions{}) })
	c := measure("sync IfChanged, unchanged", func() { mustSync(t, m, SyncOptions{IfChanged: true}) })
	if c.Readdir != 0 || c.Open != 0 || c.Read != 0 {
		t.Errorf("unchanged IfChanged sync listed or read: %+v", c)
	}
	c = measure("Stamp", func() {
		if _, err := m.Stamp(ctx); err != nil {
			t.Fatal(err)
		}
	})
	if c.Readdir != 0 || c.Open != 0 {
		t.Errorf("Stamp listed or opened: %+v", c)
	}
	measure("append", func() {
		if _, err := m.Append(ctx, strings.NewReader("x\n"), AppendOptions{Flags: FlagSeen}); err != nil {
			t.Fatal(err)
		}
	})
	measure("store +FLAGS", func() {
		if _, err := m.Store(ctx, 1, FlagsAdd, FlagFlagged, nil); err != nil {
			t.Fatal(err)
		}
	})
}
