package localindex

import (
	"fmt"
	"testing"
)

func benchSizes(b *testing.B, f func(b *testing.B, n int)) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) { f(b, n) })
	}
}

// BenchmarkSaveMailbox writes a full index file of n messages.
func BenchmarkSaveMailbox(b *testing.B) {
	benchSizes(b, func(b *testing.B, n int) {
		x := openQuiet(b, b.TempDir(), nil)
		m := fillMailbox(b, x, "alice", "INBOX", n)
		defer m.Close()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			m.needFull = true
			if err := m.Save(spoolN(int64(i + 1))); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(m.idxInfo.Size()), "file-bytes")
	})
}

// BenchmarkLoadMailbox reads and decodes an index file of n messages.
func BenchmarkLoadMailbox(b *testing.B) {
	benchSizes(b, func(b *testing.B, n int) {
		x := openQuiet(b, b.TempDir(), nil)
		fillMailbox(b, x, "alice", "INBOX", n).Close()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			m, err := x.LoadMailbox("alice", "INBOX")
			if err != nil || m.Len() != n {
				b.Fatal(err)
			}
			m.Close()
		}
	})
}

// BenchmarkSaveFlagChange is a STORE of one flag in a large mailbox: one
// log append (and now and then a compaction), plus the summary.
func BenchmarkSaveFlagChange(b *testing.B) {
	benchSizes(b, func(b *testing.B, n int) {
		x := openQuiet(b, b.TempDir(), nil)
		m := fillMailbox(b, x, "alice", "INBOX", n)
		defer m.Close()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			uid := uint32(i%n + 1)
			rec, _ := m.Lookup(uid)
			m.SetFlags(uid, rec.File, rec.InNew, rec.Flags^FlagFlagged, rec.Keywords)
			if err := m.Save(spoolN(int64(i + 1))); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLoadSummary is the STATUS fast path: one small file.
func BenchmarkLoadSummary(b *testing.B) {
	x := openQuiet(b, b.TempDir(), nil)
	if err := x.StoreSummary("alice", "INBOX", &Summary{Spool: spoolN(1), Messages: 100000, UIDNext: 100001, UIDValidity: 7}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.LoadSummary("alice", "INBOX"); err != nil {
			b.Fatal(err)
		}
	}
}
