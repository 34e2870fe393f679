package maildir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// makeMaildir fills dir with n small messages in cur/ (as other software
// would deliver them) and returns it.
func makeMaildir(b *testing.B, n int) string {
	b.Helper()
	dir := b.TempDir()
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			b.Fatal(err)
		}
	}
	body := []byte("From: a@example.com\nSubject: hello\n\nbody\n")
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%d.M%dP1.bench,S=%d:2,S", 1700000000+i/10, i, len(body))
		if err := os.WriteFile(filepath.Join(dir, "cur", name), body, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

func benchStore(b *testing.B, dir string) *Store {
	opt := DefaultOptions()
	opt.Host = "bench"
	s, err := New(Paths{Inbox: dir}, opt)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkSyncFirstSight10k: a 10,000-message maildir without a uidlist:
// list, stat every file, assign UIDs, write the uidlist.
func BenchmarkSyncFirstSight10k(b *testing.B) {
	dir := makeMaildir(b, 10000)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		_ = os.Remove(filepath.Join(dir, UidlistName))
		m, err := benchStore(b, dir).Mailbox(ctx, "INBOX")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		snap, err := m.Sync(ctx, SyncOptions{})
		if err != nil || len(snap.Messages) != 10000 {
			b.Fatalf("%v", err)
		}
	}
}

// BenchmarkSyncCold10k: a fresh handle on a 10,000-message maildir with a
// uidlist: read and parse the uidlist, list the directories.
func BenchmarkSyncCold10k(b *testing.B) {
	dir := makeMaildir(b, 10000)
	ctx := context.Background()
	m, _ := benchStore(b, dir).Mailbox(ctx, "INBOX")
	if _, err := m.Sync(ctx, SyncOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, _ := benchStore(b, dir).Mailbox(ctx, "INBOX")
		snap, err := m.Sync(ctx, SyncOptions{})
		if err != nil || len(snap.Messages) != 10000 {
			b.Fatalf("%v", err)
		}
	}
}

// BenchmarkSyncUnchanged10k: the same handle syncing an unchanged
// 10,000-message maildir (the uidlist is not read again).
func BenchmarkSyncUnchanged10k(b *testing.B) {
	dir := makeMaildir(b, 10000)
	ctx := context.Background()
	m, _ := benchStore(b, dir).Mailbox(ctx, "INBOX")
	if _, err := m.Sync(ctx, SyncOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		snap, err := m.Sync(ctx, SyncOptions{})
		if err != nil || len(snap.Messages) != 10000 {
			b.Fatalf("%v", err)
		}
	}
}

// BenchmarkStampUnchanged: the STATUS fast path.
func BenchmarkStampUnchanged(b *testing.B) {
	dir := makeMaildir(b, 100)
	ctx := context.Background()
	m, _ := benchStore(b, dir).Mailbox(ctx, "INBOX")
	snap, err := m.Sync(ctx, SyncOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st, err := m.Stamp(ctx)
		if err != nil || !st.Equal(snap.Stamp) {
			b.Fatal("changed")
		}
	}
}

// BenchmarkSyncIfChangedUnchanged10k: Sync with IfChanged on an unchanged
// 10,000-message maildir (three stats, no listing).
func BenchmarkSyncIfChangedUnchanged10k(b *testing.B) {
	dir := makeMaildir(b, 10000)
	ctx := context.Background()
	opt := DefaultOptions()
	opt.Host = "bench"
	opt.Now = func() time.Time { return time.Now().Add(time.Minute) }
	s, err := New(Paths{Inbox: dir}, opt)
	if err != nil {
		b.Fatal(err)
	}
	m, _ := s.Mailbox(ctx, "INBOX")
	if _, err := m.Sync(ctx, SyncOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		snap, err := m.Sync(ctx, SyncOptions{IfChanged: true})
		if err != nil || len(snap.Messages) != 10000 {
			b.Fatalf("%v", err)
		}
	}
}
