package localindex

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// TestConcurrent runs sessions of several users, two sessions of one user
// on one mailbox, eviction and an operator deleting the index, all at once
// (run it with -race). Every load must give well-formed records.
func TestConcurrent(t *testing.T) {
	dir := t.TempDir()
	x := openQuiet(t, dir, func(c *Config) { c.Budget = 64 << 10; c.CompactBytes = 8 << 10 })
	const iters = 150
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	report := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	validate := func(m *Mailbox) error {
		var prev uint32
		for _, r := range m.Records() {
			if r.UID <= prev {
				return fmt.Errorf("UIDs out of order: %d after %d", r.UID, prev)
			}
			prev = r.UID
			want := makeRecord(r.UID)
			if string(r.Envelope) != string(want.Envelope) || !r.Header.Equal(&want.Header) {
				return fmt.Errorf("record %d is not its own", r.UID)
			}
		}
		return nil
	}
	session := func(user, mailbox string, first uint32) {
		defer wg.Done()
		m, err := x.LoadMailbox(user, mailbox)
		if err != nil {
			m = x.NewMailbox(user, mailbox, 1)
		}
		defer func() { m.Close() }()
		uid := first
		for i := 0; i < iters; i++ {
			x.Touch(user)
			m.Upsert(makeRecord(uid))
			if rec, ok := m.Lookup(uid - 3); ok {
				m.SetFlags(rec.UID, rec.Unique()+":2,S", false, FlagSeen, nil)
			}
			if i%5 == 0 {
				m.Remove(uid - 10)
			}
			uid += 2
			m.SetUIDNext(uid)
			_ = m.Save(spoolN(int64(first)*1000 + int64(i))) // errors: serve from the spool
			if i%10 == 0 {
				m2, err := x.LoadMailbox(user, mailbox)
				if err == nil {
					if err := validate(m2); err != nil {
						report(err)
					}
					m2.Close()
				} else if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrCorrupt) {
					report(err)
				}
				if _, err := x.LoadSummary(user, mailbox); err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrCorrupt) {
					report(err)
				}
			}
		}
		if err := validate(m); err != nil {
			report(err)
		}
	}
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go session(fmt.Sprintf("user%d", i), "INBOX", 1)
	}
	wg.Add(2)
	go session("shared", "INBOX", 1)
	go session("shared", "INBOX", 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 40; i++ {
			if _, err := x.Evict(); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Logf("evict: %v", err) // races with writers recreating directories are expected
			}
			if i%10 == 9 {
				_ = os.RemoveAll(dir)
			}
		}
	}()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	t.Logf("stats %+v", x.Stats())
}
