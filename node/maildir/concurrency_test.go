package maildir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// workerLog is what one worker did and saw.
type workerLog struct {
	Delivered []string          // bodies put into the maildir
	Expunged  []string          // bodies this worker unlinked
	Appended  map[string]uint32 // body -> UID returned by Append
	Seen      map[uint32]string // UID -> unique part, from every snapshot
	Conflicts []string          // a UID seen with two unique parts
}

func (l *workerLog) see(snap *Snapshot) {
	for _, m := range snap.Messages {
		if u, ok := l.Seen[m.UID]; ok && u != m.Name.Unique {
			l.Conflicts = append(l.Conflicts, fmt.Sprintf("UID %d: %s and %s", m.UID, u, m.Name.Unique))
		}
		l.Seen[m.UID] = m.Name.Unique
	}
}

// runWorker delivers, appends, syncs, flags and expunges in dir, like one
// node serving the mailbox. Only its own messages are expunged (read
// first, so the body is known).
func runWorker(ctx context.Context, t testing.TB, dir string, id, iters int, seed int64) (*workerLog, error) {
	opt := DefaultOptions()
	opt.Logger = testOptions(t).Logger
	opt.Host = fmt.Sprintf("node%d", id)
	opt.Lock.Timeout = 60 * time.Second
	s, err := New(Paths{Inbox: dir}, opt)
	if err != nil {
		return nil, err
	}
	m, err := s.Mailbox(ctx, "INBOX")
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewSource(seed))
	log := &workerLog{Appended: map[string]uint32{}, Seen: map[uint32]string{}}
	mine := map[string]bool{}
	var snap *Snapshot
	for i := 0; i < iters; i++ {
		body := fmt.Sprintf("worker %d message %d\n", id, i)
		switch op := rng.Intn(10); {
		case op < 3:
			if _, err := m.Deliver(ctx, strings.NewReader(body)); err != nil {
				return log, fmt.Errorf("deliver: %w", err)
			}
			log.Delivered = append(log.Delivered, body)
			mine[body] = true
		case op < 5:
			uid, err := m.Append(ctx, strings.NewReader(body), AppendOptions{Flags: FlagSeen, Keywords: []string{fmt.Sprintf("w%d", id%3)}})
			if err != nil {
				return log, fmt.Errorf("append: %w", err)
			}
			log.Delivered = append(log.Delivered, body)
			log.Appended[body] = uid
			mine[body] = true
		case op < 7:
			if snap, err = m.Sync(ctx, SyncOptions{MoveNew: rng.Intn(2) == 0}); err != nil {
				return log, fmt.Errorf("sync: %w", err)
			}
			log.see(snap)
		case op < 9:
			if snap == nil || len(snap.Messages) == 0 {
				continue
			}
			uid := snap.Messages[rng.Intn(len(snap.Messages))].UID
			fl := []Flags{FlagSeen, FlagFlagged, FlagReplied, FlagDraft}[rng.Intn(4)]
			if _, err := m.Store(ctx, uid, FlagOp(rng.Intn(3)), fl, nil); err != nil && !errors.Is(err, ErrNoMessage) {
				return log, fmt.Errorf("store: %w", err)
			}
		default:
			if snap == nil || len(snap.Messages) == 0 {
				continue
			}
			uid := snap.Messages[rng.Intn(len(snap.Messages))].UID
			b, _, err := m.ReadAll(ctx, uid)
			if errors.Is(err, ErrNoMessage) {
				continue
			}
			if err != nil {
				return log, fmt.Errorf("read: %w", err)
			}
			if !mine[string(b)] {
				continue
			}
			gone, err := m.Expunge(ctx, []uint32{uid})
			if err != nil {
				return log, fmt.Errorf("expunge: %w", err)
			}
			if len(gone) == 1 {
				log.Expunged = append(log.Expunged, string(b))
				delete(mine, string(b))
			}
		}
	}
	snap, err = m.Sync(ctx, SyncOptions{})
	if err != nil {
		return log, err
	}
	log.see(snap)
	return log, nil
}

// checkLogs verifies the final state of dir against what the workers did.
func checkLogs(t *testing.T, dir string, logs []*workerLog) {
	t.Helper()
	ctx := context.Background()
	m := mustMailbox(t, newTestStore(t, dir), "INBOX")
	snap := mustSync(t, m, SyncOptions{})
	final := &workerLog{Seen: map[uint32]string{}}
	final.see(snap)
	want := map[string]bool{}
	appended := map[string]uint32{}
	byUnique := map[string]uint32{}
	for _, l := range logs {
		for _, b := range l.Delivered {
			if want[b] {
				t.Fatalf("body %q delivered twice", b)
			}
			want[b] = true
		}
		for b, u := range l.Appended {
			appended[b] = u
		}
		if len(l.Conflicts) > 0 {
			t.Errorf("a UID changed its message: %v", l.Conflicts)
		}
		for uid, u := range l.Seen {
			if prev, ok := byUnique[u]; ok && prev != uid {
				t.Errorf("message %s had UIDs %d and %d", u, prev, uid)
			}
			byUnique[u] = uid
			if fu, ok := final.Seen[uid]; ok && fu != u {
				t.Errorf("UID %d was %s, is now %s", uid, u, fu)
			}
		}
	}
	for _, l := range logs {
		for _, b := range l.Expunged {
			delete(want, b)
		}
	}
	got := map[string]uint32{}
	for _, msg := range snap.Messages {
		b := readMsg(t, m, msg.UID)
		if prev, ok := got[b]; ok {
			t.Errorf("message %q twice: UIDs %d and %d", b, prev, msg.UID)
		}
		got[b] = msg.UID
	}
	for b := range want {
		if _, ok := got[b]; !ok {
			t.Errorf("lost message %q", b)
		}
	}
	for b := range got {
		if !want[b] {
			t.Errorf("message %q should not be there", b)
		}
	}
	for b, uid := range appended {
		if g, ok := got[b]; ok && g != uid {
			t.Errorf("appended %q got UID %d, now has %d", b, uid, g)
		}
	}
	// Nothing left in tmp/.
	if names, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(names) != 0 {
		t.Errorf("%d files left in tmp/", len(names))
	}
	_ = ctx
	t.Logf("%d messages, UIDNEXT %d", len(snap.Messages), snap.UIDNext)
}

func TestConcurrentGoroutines(t *testing.T) {
	dir := t.TempDir()
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	const workers, iters = 6, 80
	logs := make([]*workerLog, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			logs[i], errs[i] = runWorker(context.Background(), t, dir, i, iters, seed+int64(i))
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	checkLogs(t, dir, logs)
}

const workerEnv = "NFSIMAP_MAILDIR_WORKER"

// TestWorkerProcess is the body of a child process of
// TestConcurrentProcesses; it does nothing in a normal run.
func TestWorkerProcess(t *testing.T) {
	spec := os.Getenv(workerEnv)
	if spec == "" {
		t.Skip("only runs as a child of TestConcurrentProcesses")
	}
	f := strings.Split(spec, ",")
	if len(f) != 5 {
		t.Fatalf("bad %s=%q", workerEnv, spec)
	}
	id, _ := strconv.Atoi(f[1])
	iters, _ := strconv.Atoi(f[2])
	seed, _ := strconv.ParseInt(f[3], 10, 64)
	log, err := runWorker(context.Background(), t, f[0], id, iters, seed)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(log)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f[4], b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentProcesses(t *testing.T) {
	if os.Getenv(workerEnv) != "" {
		t.Skip("child")
	}
	dir := t.TempDir()
	out := t.TempDir()
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	const procs, goroutines, iters = 3, 2, 60
	var logs []*workerLog
	var mu sync.Mutex
	var wg sync.WaitGroup
	var cmds []*exec.Cmd
	var outs []string
	for p := 0; p < procs; p++ {
		o := filepath.Join(out, fmt.Sprintf("p%d.json", p))
		cmd := exec.Command(os.Args[0], "-test.run=^TestWorkerProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%d,%d,%s", workerEnv, dir, 100+p, iters, seed+100+int64(p), o))
		cmds = append(cmds, cmd)
		outs = append(outs, o)
	}
	outputs := make([][]byte, procs)
	for i, cmd := range cmds {
		wg.Add(1)
		go func(i int, cmd *exec.Cmd) {
			defer wg.Done()
			outputs[i], _ = cmd.CombinedOutput()
		}(i, cmd)
	}
	// Goroutines in this process too.
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			l, err := runWorker(context.Background(), t, dir, g, iters, seed+int64(g))
			if err != nil {
				t.Errorf("goroutine %d: %v", g, err)
				return
			}
			mu.Lock()
			logs = append(logs, l)
			mu.Unlock()
		}(g)
	}
	wg.Wait()
	for i, cmd := range cmds {
		if !cmd.ProcessState.Success() {
			t.Fatalf("process %d failed:\n%s", i, outputs[i])
		}
		b, err := os.ReadFile(outs[i])
		if err != nil {
			t.Fatalf("process %d: %v\n%s", i, err, outputs[i])
		}
		var l workerLog
		if err := json.Unmarshal(b, &l); err != nil {
			t.Fatal(err)
		}
		logs = append(logs, &l)
	}
	if t.Failed() {
		return
	}
	checkLogs(t, dir, logs)
}
