package localindex

import (
	"bytes"
	"testing"
)

func FuzzDecodeSummary(f *testing.F) {
	f.Add(encodeSummary("alice", "INBOX", &Summary{Spool: spoolN(1), UIDValidity: 1, UIDNext: 5, Messages: 4, Unseen: 1, Size: 100}))
	f.Add(encodeSummary("", "", &Summary{Size: -1, DeletedSize: -1}))
	f.Add(encodeSummary("bob", "Trash", &Summary{Spool: spoolN(2), UIDValidity: 3, UIDNext: 9, Messages: 8, Unseen: 1, Deleted: 5, Size: 800, DeletedSize: 500}))
	f.Add([]byte{})
	f.Add([]byte("nfsixSUM\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		user, mailbox, s, err := decodeSummary(b)
		if err != nil {
			return
		}
		// Whatever decodes must encode back to the same bytes (the
		// encoding is canonical up to the varint forms, which the
		// checksum pins down).
		again := encodeSummary(user, mailbox, s)
		u2, m2, s2, err := decodeSummary(again)
		if err != nil || u2 != user || m2 != mailbox || !s2.Updated.Equal(s.Updated) {
			t.Fatalf("re-encoded summary does not decode the same: %v", err)
		}
		s2.Updated = s.Updated
		if *s2 != *s {
			t.Fatalf("summary changed on re-encoding: %+v vs %+v", *s2, *s)
		}
	})
}

func FuzzDecodeMailbox(f *testing.F) {
	recs := []Record{makeRecord(1), makeRecord(3), makeRecord(7), {UID: 9, File: "x"}, makeRecord(10)}
	head := mailboxHead{spool: spoolN(1), uidValidity: 5, uidNext: 10, keywords: []string{"a", "b"}}
	idx := encodeIndex(nil, 42, "alice", "INBOX", &head, recs)
	f.Add(idx, []byte{})
	// A log with two entries.
	lg := appendLogHeader(nil, 42)
	lg, start := startEntry(lg)
	lg = appendHead(lg, &head)
	lg = append(lg, 3)
	lg = append(lg, opUpsert)
	r := makeRecord(11)
	lg = appendRecord(lg, &r)
	lg = append(lg, opRemove, 3)
	lg = appendFlagsOp(lg, 1, "y:2,S", false, FlagSeen, []string{"k"})
	lg = finishEntry(lg, start)
	lg, start = startEntry(lg)
	lg = appendHead(lg, &head)
	lg = append(lg, 0)
	lg = finishEntry(lg, start)
	f.Add(idx, lg)
	f.Add([]byte("nfsixIDX"), []byte("nfsixLOG"))
	f.Fuzz(func(t *testing.T, ib, lb []byte) {
		di, err := decodeIndex(ib)
		if err != nil {
			// A log alone must parse or fail cleanly too.
			_, _ = parseLog(lb, 42, func(*mailboxHead, []logOp) {})
			return
		}
		for i := 1; i < len(di.recs); i++ {
			if di.recs[i].UID <= di.recs[i-1].UID {
				t.Fatal("decoded records out of order")
			}
		}
		again := encodeIndex(nil, di.gen, di.user, di.mailbox, &di.head, di.recs)
		if !bytes.Equal(again, ib) {
			// Varints have one canonical form each, so this only
			// happens with non-minimal varints, which the checksum
			// makes unlikely to reach; decode must still agree.
			d2, err := decodeIndex(again)
			if err != nil || len(d2.recs) != len(di.recs) {
				t.Fatalf("re-encoded index does not decode: %v", err)
			}
		}
		m := &Mailbox{head: di.head, recs: di.recs}
		valid, _ := parseLog(lb, di.gen, m.applyEntry)
		if valid < 0 || valid > len(lb) {
			t.Fatalf("valid prefix %d of %d bytes", valid, len(lb))
		}
		for i := 1; i < len(m.recs); i++ {
			if m.recs[i].UID <= m.recs[i-1].UID {
				t.Fatal("records out of order after the log")
			}
		}
	})
}
