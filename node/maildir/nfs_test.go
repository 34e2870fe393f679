package maildir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
