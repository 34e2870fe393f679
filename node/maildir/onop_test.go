package maildir

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"
)

// opCounter counts what Options.OnOp and Lock.OnAcquire are told.
type opCounter struct {
	mu    sync.Mutex
	ops   map[string]int
	locks int
}

func (c *opCounter) op(name string) {
	c.mu.Lock()
	c.ops[name]++
	c.mu.Unlock()
}

func (c *opCounter) lock(time.Duration, error) {
	c.mu.Lock()
	c.locks++
	c.mu.Unlock()
}

// take returns the counts since the last take and starts over.
func (c *opCounter) take() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops, locks := c.ops, c.locks
	c.ops, c.locks = map[string]int{}, 0
	return ops, locks
}

// TestOnOp checks the operations a Store reports through Options.OnOp,
// and that the lock callback in Options.Lock reaches nfslock.
func TestOnOp(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := time.Now()
	c := &opCounter{ops: map[string]int{}}
	opt := testOptions(t)
	opt.Now = func() time.Time { return clock }
	opt.OnOp = c.op
	opt.Lock.OnAcquire = c.lock
	s, err := New(Paths{Inbox: dir, Root: dir}, opt)
	if err != nil {
		t.Fatal(err)
	}
	m := mustMailbox(t, s, "INBOX")
	if err := s.Create(ctx, "Archive"); err != nil {
		t.Fatal(err)
	}
	arch := mustMailbox(t, s, "Archive")
	mustSync(t, arch, SyncOptions{})
	c.take()

	step := func(name string, want map[string]int, wantLocks bool, f func() error) {
		t.Helper()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, locks := c.take()
		// Syncs and control file writes come with most operations; only
		// their presence is checked where the step asks for them.
		for _, op := range []string{OpSync, OpControlWrite} {
			if _, ok := want[op]; !ok {
				delete(got, op)
			} else if got[op] > 0 {
				got[op] = want[op]
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: ops %v, want %v", name, got, want)
		}
		if wantLocks != (locks > 0) {
			t.Errorf("%s: %d lock acquisitions", name, locks)
		}
	}

	var uid uint32
	step("append", map[string]int{OpAppend: 1, OpSync: 1, OpControlWrite: 1}, true, func() error {
		var err error
		uid, err = m.Append(ctx, strings.NewReader("Subject: x\r\n\r\nx\r\n"), AppendOptions{})
		return err
	})
	step("sync", map[string]int{OpSync: 1}, false, func() error {
		_, err := m.Sync(ctx, SyncOptions{})
		return err
	})
	clock = clock.Add(5 * time.Second)
	step("sync if changed", map[string]int{OpSyncUnchanged: 2}, false, func() error {
		for range 2 {
			if _, err := m.Sync(ctx, SyncOptions{IfChanged: true}); err != nil {
				return err
			}
		}
		return nil
	})
	step("read", map[string]int{OpRead: 2}, false, func() error {
		_, msg, err := m.ReadAll(ctx, uid)
		if err != nil {
			return err
		}
		f, err := m.OpenFile(msg)
		if err != nil {
			return err
		}
		return f.Close()
	})
	step("store", map[string]int{OpRename: 1}, false, func() error {
		_, err := m.Store(ctx, uid, FlagsAdd, FlagSeen, nil)
		return err
	})
	step("copy", map[string]int{OpCopy: 1, OpSync: 1}, true, func() error {
		_, err := m.Copy(ctx, []uint32{uid}, arch)
		return err
	})
	step("expunge", map[string]int{OpExpunge: 1}, false, func() error {
		_, err := m.Expunge(ctx, []uint32{uid})
		return err
	})
	step("deliver and move to cur", map[string]int{OpDeliver: 1, OpSync: 1, OpRename: 1}, true, func() error {
		if _, err := m.Deliver(ctx, strings.NewReader("y")); err != nil {
			return err
		}
		_, err := m.Sync(ctx, SyncOptions{MoveNew: true})
		return err
	})
}
