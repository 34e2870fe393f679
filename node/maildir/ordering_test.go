package maildir

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"
)

// TestSnapshotHasEveryLowerUID checks the ordering invariant a session
// relies on: a message that exists on disk and whose UID is below the
// highest UID of a snapshot is in that snapshot. A session that showed UID
// n can never show a lower UID it missed (IMAP sequence numbers follow UID
// order), so a snapshot with a hole would hide that message until the
// next SELECT, or tell the client it was expunged.
//
// Two stores (two "nodes") on one directory race: one appends, one
// delivers into new/ and syncs with MoveNew, one keeps changing flags (a
// rename inside cur/, which a listing running at the same moment must
// still see), and two observers sync. cur/ holds enough files that one
// listing takes several getdents calls. Nothing is expunged, so the UIDs
// are 1..n without gaps and every snapshot must hold exactly 1..max.
func TestSnapshotHasEveryLowerUID(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	newStore := func(host string) *Store {
		opt := testOptions(t)
		opt.Host = host
		opt.NoFsync = true
		s, err := New(Paths{Inbox: dir}, opt)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	sa, sb := newStore("node-a"), newStore("node-b")
	appender := mustMailbox(t, sa, "INBOX")
	// Enough messages that a listing of cur/ needs more than one getdents
	// call (names are about 80 bytes; Go reads 8 KiB at a time).
	const prefill = 200
	for i := 0; i < prefill; i++ {
		if _, err := appender.Append(ctx, strings.NewReader(fmt.Sprintf("Subject: pre %d\r\n\r\nx\r\n", i)), AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	rounds := 60
	if testing.Short() {
		rounds = 30
	}
	var (
		wg       sync.WaitGroup
		stop     = make(chan struct{})
		errMu    sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	failed := func() bool {
		errMu.Lock()
		defer errMu.Unlock()
		return firstErr != nil
	}
	// check verifies one snapshot.
	check := func(who string, snap *Snapshot) {
		if len(snap.Messages) == 0 {
			return
		}
		max := snap.Messages[len(snap.Messages)-1].UID
		if uint32(len(snap.Messages)) == max {
			return // 1..max without a hole (UIDs are unique and ascending)
		}
		have := make(map[uint32]bool, len(snap.Messages))
		for _, m := range snap.Messages {
			have[m.UID] = true
		}
		var missing []uint32
		for u := uint32(1); u < max && len(missing) < 10; u++ {
			if !have[u] {
				missing = append(missing, u)
			}
		}
		fail(fmt.Errorf("%s: snapshot up to UID %d has %d messages; missing %v", who, max, len(snap.Messages), missing))
	}

	// Appender on node A.
	var producers sync.WaitGroup
	producers.Add(1)
	go func() {
		defer producers.Done()
		for i := 0; i < rounds && !failed(); i++ {
			if _, err := appender.Append(ctx, strings.NewReader(fmt.Sprintf("Subject: a %d\r\n\r\nx\r\n", i)), AppendOptions{Flags: FlagSeen}); err != nil {
				fail(fmt.Errorf("append: %w", err))
				return
			}
		}
	}()
	// Deliverer on node B: new/, then a sync that gives UIDs and moves it.
	producers.Add(1)
	go func() {
		defer producers.Done()
		m := mustMailbox(t, sb, "INBOX")
		for i := 0; i < rounds && !failed(); i++ {
			if _, err := m.Deliver(ctx, strings.NewReader(fmt.Sprintf("Subject: d %d\r\n\r\nx\r\n", i))); err != nil {
				fail(fmt.Errorf("deliver: %w", err))
				return
			}
			snap, err := m.Sync(ctx, SyncOptions{MoveNew: i%2 == 0})
			if err != nil {
				fail(fmt.Errorf("deliverer sync: %w", err))
				return
			}
			check("deliverer", snap)
		}
	}()
	// Flagger on node B: renames inside cur/ all the time.
	wg.Add(1)
	go func() {
		defer wg.Done()
		m := mustMailbox(t, sb, "INBOX")
		rng := rand.New(rand.NewSource(1))
		for !failed() {
			select {
			case <-stop:
				return
			default:
			}
			uid := uint32(1 + rng.Intn(prefill))
			op := FlagsAdd
			if rng.Intn(2) == 0 {
				op = FlagsRemove
			}
			if _, err := m.Store(ctx, uid, op, FlagFlagged|FlagReplied, nil); err != nil {
				fail(fmt.Errorf("store UID %d: %w", uid, err))
				return
			}
		}
	}()
	// Observers, one per node.
	for _, obs := range []struct {
		name string
		s    *Store
	}{{"observer A", sa}, {"observer B", sb}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := mustMailbox(t, obs.s, "INBOX")
			for !failed() {
				select {
				case <-stop:
					return
				default:
				}
				snap, err := m.Sync(ctx, SyncOptions{})
				if err != nil {
					fail(fmt.Errorf("%s sync: %w", obs.name, err))
					return
				}
				check(obs.name, snap)
			}
		}()
	}

	// The appender and deliverer end by themselves; then stop the rest.
	producers.Wait()
	close(stop)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	final := mustSync(t, mustMailbox(t, sa, "INBOX"), SyncOptions{})
	check("final", final)
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	if got, want := len(final.Messages), prefill+2*rounds; got != want {
		t.Fatalf("%d messages at the end, want %d", got, want)
	}
}
