package localindex_test

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/nfsimap/nfsimap/localindex"
)

// spoolStat stands for the session's stats of the maildir (new/, cur/,
// dovecot-uidlist), revalidated on NFS before a "nothing changed" answer
// is trusted.
func spoolStat() localindex.SpoolState {
	return localindex.SpoolState{NewMtime: 1, CurMtime: 2, UidlistMtime: 3, UidlistSize: 40, UidlistIno: 5}
}

// Example shows the calls a session makes: STATUS from the summary when the
// spool is unchanged, SELECT from the mailbox index, and a Save after
// applying the spool's changes. Every index error means "use the spool".
func Example() {
	dir, _ := os.MkdirTemp("", "localindex-example")
	defer os.RemoveAll(dir)
	cfg := localindex.DefaultConfig()
	cfg.Dir = dir
	cfg.Budget = 10 << 30
	x, err := localindex.Open(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println(err)
		return
	}
	x.Touch("alice") // at login

	// SELECT: load the index, or build it from the spool.
	m, err := x.LoadMailbox("alice", "INBOX")
	if errors.Is(err, localindex.ErrNotFound) || errors.Is(err, localindex.ErrCorrupt) {
		m = x.NewMailbox("alice", "INBOX", 1700000000)
	}
	defer m.Close()
	if !m.Spool().Equal(spoolStat()) {
		// The spool changed (or the index is new): sync the maildir and
		// apply every difference, then commit with the state taken
		// before reading the spool.
		m.Upsert(localindex.Record{UID: 1, File: "1700000000.M1P1.host:2,S", Flags: localindex.FlagSeen})
		m.Upsert(localindex.Record{UID: 2, File: "1700000001.M2P1.host", InNew: true})
		m.SetUIDNext(3)
		if err := m.Save(spoolStat()); err != nil {
			fmt.Println("index not written, serving from the spool:", err)
		}
	}
	r, _ := m.Lookup(2)
	fmt.Println("UID 2 is", r.File)

	// STATUS of an unchanged mailbox: one small file, no spool reads.
	if sum, err := x.LoadSummary("alice", "INBOX"); err == nil && sum.Spool.Equal(spoolStat()) {
		fmt.Printf("MESSAGES %d UNSEEN %d RECENT %d UIDNEXT %d\n", sum.Messages, sum.Unseen, sum.Recent, sum.UIDNext)
	}
	// Output:
	// UID 2 is 1700000001.M2P1.host
	// MESSAGES 2 UNSEEN 1 RECENT 1 UIDNEXT 3
}
