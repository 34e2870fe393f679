package maildir

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/nfsimap/nfsimap/internal/dovecot"
)

// TestDovecotInterop runs Dovecot on a maildir this package wrote and
// checks that it sees the same UIDs, UIDVALIDITY, flags and keywords; then
// Dovecot changes the maildir and this package must see Dovecot's UIDs and
// keywords. This is the migration case: both servers on one spool.
func TestDovecotInterop(t *testing.T) {
	ctx := context.Background()
	spool := t.TempDir()
	dir := filepath.Join(spool, "alice")
	s := newTestStore(t, dir)
	in := mustMailbox(t, s, "INBOX")
	wantByUID := map[uint32][]string{}
	for i := 0; i < 5; i++ {
		opt := AppendOptions{}
		var fl []string
		if i%2 == 0 {
			opt.Flags = FlagSeen
			fl = append(fl, `\Seen`)
		}
		if i == 3 {
			opt.Flags |= FlagFlagged | FlagReplied
			opt.Keywords = []string{"$Label1", "work"}
			fl = append(fl, `\Answered`, `\Flagged`, "$Label1", "work")
		}
		uid, err := in.Append(ctx, strings.NewReader(fmt.Sprintf("Subject: m%d\r\n\r\nbody %d\r\n", i, i)), opt)
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(fl)
		wantByUID[uid] = fl
	}
	// Expunge one so the UIDs have a gap.
	if _, err := in.Expunge(ctx, []uint32{2}); err != nil {
		t.Fatal(err)
	}
	delete(wantByUID, 2)
	if _, err := in.Deliver(ctx, strings.NewReader("Subject: delivered\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	ours := mustSync(t, in, SyncOptions{})
	deliveredUID := ours.Messages[len(ours.Messages)-1].UID
	wantByUID[deliveredUID] = nil
	if err := s.Create(ctx, "Archive"); err != nil {
		t.Fatal(err)
	}

	srv := dovecot.Start(t, spool, map[string]string{"alice": "secret"})
	c, err := imapclient.DialInsecure(srv.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice", "secret").Wait(); err != nil {
		t.Fatalf("login: %v\n%s", err, srv.Log())
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("select: %v\n%s", err, srv.Log())
	}
	if sel.UIDValidity != ours.UIDValidity || uint32(sel.UIDNext) != ours.UIDNext || int(sel.NumMessages) != len(ours.Messages) {
		t.Fatalf("dovecot: %+v, ours: validity %d next %d n %d", sel, ours.UIDValidity, ours.UIDNext, len(ours.Messages))
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3, 4, 5), &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		var fl []string
		for _, f := range m.Flags {
			if f != `\Recent` {
				fl = append(fl, string(f))
			}
		}
		sort.Strings(fl)
		w, ok := wantByUID[uint32(m.UID)]
		if !ok || strings.Join(fl, " ") != strings.Join(w, " ") {
			t.Errorf("dovecot UID %d flags %v, want %v (known %v)", m.UID, fl, w, ok)
		}
	}

	// Dovecot appends and sets a new keyword; we must agree.
	body := "Subject: from dovecot\r\n\r\nhello\r\n"
	app := c.Append("INBOX", int64(len(body)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen, "dovecotkw"}})
	if _, err := app.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	ad, err := app.Wait()
	if err != nil {
		t.Fatalf("append: %v\n%s", err, srv.Log())
	}
	if err := c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"$Label2"}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}

	after := mustSync(t, mustMailbox(t, newTestStore(t, dir), "INBOX"), SyncOptions{})
	if after.UIDValidity != ours.UIDValidity {
		t.Fatalf("UIDVALIDITY changed %d -> %d", ours.UIDValidity, after.UIDValidity)
	}
	got, ok := after.Lookup(uint32(ad.UID))
	if !ok || got.Flags != FlagSeen || fmt.Sprint(got.Keywords) != "[dovecotkw]" {
		t.Fatalf("dovecot's append (UID %d): %+v %v", ad.UID, got, ok)
	}
	one, _ := after.Lookup(1)
	if fmt.Sprint(one.Keywords) != "[$Label2]" {
		t.Fatalf("UID 1 keywords %v", one.Keywords)
	}
	for uid := range wantByUID {
		if _, ok := after.Lookup(uid); !ok {
			t.Errorf("UID %d lost after dovecot", uid)
		}
	}
}
