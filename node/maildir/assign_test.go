package maildir

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAssignChecksListedFiles: files listed before the uidlist lock are
// checked one by one under it. What another node did in between (seen
// here through the lock's OnAcquire hook, which runs once the lock is
// taken) must be respected: a file it numbered, expunged and dropped from
// the uidlist does not come back with a new UID, a file moved away is
// left for the next sync (a second listing under the lock would have
// numbered it at once: the test checks that there is none), and a file
// still there gets its UID.
func TestAssignChecksListedFiles(t *testing.T) {
	dir := t.TempDir()
	opt := testOptions(t)
	opt.ExpungeGrace = 0
	var hook func()
	opt.Lock.OnAcquire = func(time.Duration, error) {
		if hook != nil {
			h := hook
			hook = nil
			h()
		}
	}
	s, err := New(Paths{Inbox: dir}, opt)
	if err != nil {
		t.Fatal(err)
	}
	m := mustMailbox(t, s, "INBOX")
	writeRaw(t, dir, "cur/1000.M1P1.a:2,S", "a", time.Time{})
	first := mustSync(t, m, SyncOptions{})
	if len(first.Messages) != 1 {
		t.Fatalf("first sync: %d messages", len(first.Messages))
	}

	writeRaw(t, dir, "new/2000.M1P1.gone", "expunged elsewhere", time.Time{})
	writeRaw(t, dir, "new/2000.M2P1.moved", "moved elsewhere", time.Time{})
	writeRaw(t, dir, "new/2000.M3P1.stays", "stays", time.Time{})
	hook = func() {
		// Another node, before we got the lock: gave "gone" UID 2,
		// expunged it and dropped its record; moved "moved" to cur/
		// without giving it a UID (an MUA working on the maildir).
		ulPath := filepath.Join(dir, UidlistName)
		data, err := os.ReadFile(ulPath)
		if err != nil {
			t.Error(err)
			return
		}
		ul, err := ParseUidlist(data)
		if err != nil {
			t.Error(err)
			return
		}
		ul.NextUID++ // UID 2 was given and is gone
		if err := os.WriteFile(ulPath+".x", ul.Marshal(), 0o600); err != nil {
			t.Error(err)
		}
		if err := os.Rename(ulPath+".x", ulPath); err != nil {
			t.Error(err)
		}
		if err := os.Remove(filepath.Join(dir, "new", "2000.M1P1.gone")); err != nil {
			t.Error(err)
		}
		if err := os.Rename(filepath.Join(dir, "new", "2000.M2P1.moved"), filepath.Join(dir, "cur", "2000.M2P1.moved:2,S")); err != nil {
			t.Error(err)
		}
	}
	snap := mustSync(t, m, SyncOptions{})
	if hook != nil {
		t.Fatal("the sync did not take the uidlist lock")
	}
	got := map[string]uint32{}
	for _, msg := range snap.Messages {
		got[msg.Name.Unique] = msg.UID
	}
	if _, ok := got["2000.M1P1.gone"]; ok {
		t.Errorf("the expunged file came back: %v", got)
	}
	if got["2000.M3P1.stays"] != 3 {
		t.Errorf("the file still there: UID %d, want 3 (%v)", got["2000.M3P1.stays"], got)
	}
	if _, ok := got["2000.M2P1.moved"]; ok {
		t.Errorf("the moved file was numbered from its old name: %v", got)
	}
	// The next sync finds the moved file under its new name.
	snap = mustSync(t, m, SyncOptions{})
	got = map[string]uint32{}
	for _, msg := range snap.Messages {
		got[msg.Name.Unique] = msg.UID
	}
	if got["2000.M2P1.moved"] != 4 || len(got) != 3 {
		t.Errorf("after the next sync: %v, want the moved file with UID 4", got)
	}
	data, err := os.ReadFile(filepath.Join(dir, UidlistName))
	if err != nil {
		t.Fatal(err)
	}
	ul, err := ParseUidlist(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ul.Records {
		if r.Unique() == "2000.M1P1.gone" {
			t.Errorf("the uidlist has a record of the expunged file: %+v", r)
		}
	}
}
