package maildir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func listString(t *testing.T, s *Store) string {
	t.Helper()
	infos, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, i := range infos {
		p := i.Name
		if i.NoSelect {
			p += "(noselect)"
		}
		if i.HasChildren {
			p += "(children)"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

func TestFolders(t *testing.T) {
	ctx := context.Background()
	for _, split := range []bool{false, true} {
		t.Run(fmt.Sprintf("split=%v", split), func(t *testing.T) {
			base := t.TempDir()
			paths := Paths{Inbox: filepath.Join(base, "Maildir")}
			if split {
				paths = Paths{Inbox: filepath.Join(base, "spool", "u"), Root: filepath.Join(base, "home", "u", "Mail")}
			}
			s, err := New(paths, testOptions(t))
			if err != nil {
				t.Fatal(err)
			}
			if got := listString(t, s); got != "INBOX" {
				t.Fatalf("fresh: %s", got)
			}
			for _, n := range []string{"Sent", "Archive.2024", "Archive.2023", "a.b.c"} {
				if err := s.Create(ctx, n); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Create(ctx, "Sent"); !errors.Is(err, ErrMailboxExists) {
				t.Fatalf("create twice: %v", err)
			}
			if err := s.Create(ctx, "inbox"); !errors.Is(err, ErrMailboxExists) {
				t.Fatalf("create INBOX: %v", err)
			}
			if err := s.Create(ctx, "a/b"); !errors.Is(err, ErrInvalidName) {
				t.Fatalf("create a/b: %v", err)
			}
			if _, err := os.Stat(filepath.Join(s.Paths().Root, ".Archive.2024", "maildirfolder")); err != nil {
				t.Fatal(err)
			}
			want := "Archive(noselect)(children) Archive.2023 Archive.2024 INBOX Sent a(noselect)(children) a.b(noselect)(children) a.b.c"
			if got := listString(t, s); got != want {
				t.Fatalf("list:\n%s\nwant\n%s", got, want)
			}
			if _, err := s.Mailbox(ctx, "Archive"); !errors.Is(err, ErrNoMailbox) {
				t.Fatalf("select noselect: %v", err)
			}
			if _, err := s.Mailbox(ctx, "Nope"); !errors.Is(err, ErrNoMailbox) {
				t.Fatalf("select missing: %v", err)
			}

			// Delete: INBOX refused; a parent with children keeps them.
			if err := s.Delete(ctx, "INBOX"); !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("delete INBOX: %v", err)
			}
			if err := s.Create(ctx, "a.b"); err != nil {
				t.Fatal(err)
			}
			sub := mustMailbox(t, s, "a.b")
			if _, err := sub.Deliver(ctx, strings.NewReader("x")); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, "a.b"); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, "a.b"); !errors.Is(err, ErrNoMailbox) {
				t.Fatalf("delete twice: %v", err)
			}
			if err := s.Delete(ctx, "a"); !errors.Is(err, ErrNoMailbox) {
				t.Fatalf("delete implied parent: %v", err)
			}
			if got := listString(t, s); !strings.Contains(got, "a.b(noselect)(children) a.b.c") {
				t.Fatalf("after delete: %s", got)
			}
			if _, err := sub.Sync(ctx, SyncOptions{}); !errors.Is(err, ErrNoMailbox) {
				t.Fatalf("sync of deleted: %v", err)
			}

			// Rename with children.
			if err := s.Rename(ctx, "Archive", "Old"); err != nil {
				t.Fatal(err)
			}
			if err := s.Rename(ctx, "Sent", "Old.2023"); !errors.Is(err, ErrMailboxExists) {
				t.Fatalf("rename onto existing: %v", err)
			}
			if err := s.Rename(ctx, "Old", "Old.x"); !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("rename into itself: %v", err)
			}
			if err := s.Rename(ctx, "Nope", "x"); !errors.Is(err, ErrNoMailbox) {
				t.Fatalf("rename missing: %v", err)
			}
			if err := s.Rename(ctx, "Sent", "INBOX"); !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("rename to INBOX: %v", err)
			}
			want = "INBOX Old(noselect)(children) Old.2023 Old.2024 Sent a(noselect)(children) a.b(noselect)(children) a.b.c"
			if got := listString(t, s); got != want {
				t.Fatalf("after rename:\n%s\nwant\n%s", got, want)
			}

			// Rename INBOX: its messages move, INBOX stays (empty).
			in := mustMailbox(t, s, "INBOX")
			for i := 0; i < 3; i++ {
				if _, err := in.Append(ctx, strings.NewReader(fmt.Sprint(i)), AppendOptions{Flags: FlagSeen}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Rename(ctx, "INBOX", "Moved"); err != nil {
				t.Fatal(err)
			}
			if snap := mustSync(t, in, SyncOptions{}); len(snap.Messages) != 0 {
				t.Fatalf("INBOX after rename: %+v", snap.Messages)
			}
			moved := mustSync(t, mustMailbox(t, s, "Moved"), SyncOptions{})
			if len(moved.Messages) != 3 || moved.Messages[0].Flags != FlagSeen {
				t.Fatalf("moved: %+v", moved.Messages)
			}
		})
	}
}

func TestSubscriptions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := newTestStore(t, dir)
	if subs, err := s.Subscriptions(ctx); err != nil || len(subs) != 0 {
		t.Fatalf("%v %v", subs, err)
	}
	for _, n := range []string{"INBOX", "Archive.2024", "Sent", "inbox"} {
		if err := s.SetSubscribed(ctx, n, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetSubscribed(ctx, "Sent", false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSubscribed(ctx, "a..b", true); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("%v", err)
	}
	subs, err := s.Subscriptions(ctx)
	if err != nil || !reflect.DeepEqual(subs, []string{"INBOX", "Archive.2024"}) {
		t.Fatalf("%q %v", subs, err)
	}
	if b := mustRead(t, filepath.Join(dir, SubscriptionsName)); string(b) != "V\t2\n\nINBOX\nArchive\t2024\n" {
		t.Fatalf("%q", b)
	}
	// The old format is read and rewritten in the new one.
	writeRaw(t, dir, SubscriptionsName, "INBOX\nSent\n", zeroTime)
	if err := s.SetSubscribed(ctx, "Drafts", true); err != nil {
		t.Fatal(err)
	}
	if b := mustRead(t, filepath.Join(dir, SubscriptionsName)); string(b) != "V\t2\n\nINBOX\nSent\nDrafts\n" {
		t.Fatalf("%q", b)
	}
}

func TestUIDValidityChangesOnRecreate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := newTestStore(t, dir)
	seen := map[uint32]bool{}
	for i := 0; i < 5; i++ {
		if err := s.Create(ctx, "Box"); err != nil {
			t.Fatal(err)
		}
		snap := mustSync(t, mustMailbox(t, s, "Box"), SyncOptions{})
		if seen[snap.UIDValidity] || snap.UIDValidity == 0 {
			t.Fatalf("UIDVALIDITY %d given twice", snap.UIDValidity)
		}
		seen[snap.UIDValidity] = true
		if err := s.Delete(ctx, "Box"); err != nil {
			t.Fatal(err)
		}
	}
	// Dovecot's counter files are there.
	if b := mustRead(t, filepath.Join(dir, UIDValidityName)); len(b) != 8 {
		t.Fatalf("%q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, UIDValidityName+"."+string(mustRead(t, filepath.Join(dir, UIDValidityName))))); err != nil {
		t.Fatal(err)
	}
}
