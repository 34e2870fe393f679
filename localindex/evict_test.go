package localindex

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

func TestEvict(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	const nUsers = 10
	setup := openQuiet(t, dir, func(c *Config) { c.Now = clk.Now })
	for i := 0; i < nUsers; i++ {
		fillMailbox(t, setup, fmt.Sprintf("user%d", i), "INBOX", 40).Close()
		fillMailbox(t, setup, fmt.Sprintf("user%d", i), "Sent", 10).Close()
	}
	if res, err := setup.Evict(); err != nil || res.EvictedUsers != 0 {
		t.Fatalf("Evict without a budget: %+v %v", res, err)
	}
	users, err := setup.scanUsage()
	if err != nil || len(users) != nUsers {
		t.Fatalf("scan: %d users, %v", len(users), err)
	}
	var usage int64
	for _, u := range users {
		usage += u.bytes
	}
	budget := usage / 2
	x := openTest(t, dir, func(c *Config) { c.Now = clk.Now; c.Budget = budget; c.EvictTarget = 0.8 })
	// user0 is the coldest but has an open mailbox: evicted last.
	for i := 0; i < nUsers; i++ {
		clk.Add(time.Minute)
		x.Touch(fmt.Sprintf("user%d", i))
	}
	open, err := x.LoadMailbox("user0", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	res, err := x.Evict()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("usage %d, budget %d: %+v", usage, budget, res)
	if res.Usage-res.EvictedBytes > int64(float64(budget)*0.8) || res.EvictedUsers == 0 {
		t.Fatalf("eviction left %d bytes for a target of %v", res.Usage-res.EvictedBytes, float64(budget)*0.8)
	}
	// The coldest idle users went first: user1..userK gone, the rest kept.
	for i := 1; i < nUsers; i++ {
		_, err := x.LoadSummary(fmt.Sprintf("user%d", i), "INBOX")
		gone := errors.Is(err, ErrNotFound)
		if want := i <= res.EvictedUsers; gone != want {
			t.Errorf("user%d: gone %v, want %v (%v)", i, gone, want, err)
		}
	}
	if _, err := x.LoadSummary("user0", "INBOX"); err != nil {
		t.Errorf("the open user was evicted: %v", err)
	}
	// The open mailbox goes on, and saves again.
	open.Upsert(makeRecord(999))
	if err := open.Save(spoolN(5)); err != nil {
		t.Fatal(err)
	}
	open.Close()
	st := x.Stats()
	if st.EvictedUsers != int64(res.EvictedUsers) || st.EvictedBytes != res.EvictedBytes || st.EvictRuns != 1 {
		t.Errorf("stats %+v", st)
	}

	// After a restart the order comes from the stamp files.
	x2 := openQuiet(t, dir, func(c *Config) { c.Now = clk.Now; c.Budget = 1; c.EvictTarget = 1 })
	users, _ = x2.scanUsage()
	for _, u := range users {
		if u.lastUse.Before(newClock().Now()) && u.dir != userDirName("user0") {
			t.Errorf("user dir %s: last use %v is not from its stamp", u.dir, u.lastUse)
		}
	}
	res, err = x2.Evict()
	if err != nil || res.Usage-res.EvictedBytes != 0 {
		t.Fatalf("budget 1 evicted %+v, %v", res, err)
	}
}

func TestRunEvicts(t *testing.T) {
	dir := t.TempDir()
	x := openQuiet(t, dir, func(c *Config) { c.Budget = 1; c.EvictInterval = time.Millisecond })
	fillMailbox(t, x, "alice", "INBOX", 5).Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { x.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(x.userDir("alice")); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run never evicted")
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
	cancel()
	<-done
}

func TestEvictRemovesOldTemporaryFiles(t *testing.T) {
	clk := newClock()
	x := openQuiet(t, t.TempDir(), func(c *Config) { c.Now = clk.Now; c.Budget = 1 << 30 })
	fillMailbox(t, x, "alice", "INBOX", 1).Close()
	tmp := x.userDir("alice") + "/.tmp-12345"
	if err := os.WriteFile(tmp, []byte("left by a crash"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := clk.Now().Add(-time.Hour)
	if err := os.Chtimes(tmp, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Evict(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old temporary file kept: %v", err)
	}
}
