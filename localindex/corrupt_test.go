package localindex

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// checkCorruptSummary writes a damaged summary file and checks that a load
// reports ErrCorrupt (never a panic or a wrong summary) and removes it.
func checkCorruptSummary(t *testing.T, x *Index, path string, data []byte, what string) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := x.LoadSummary("alice", "INBOX")
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%s: LoadSummary = %+v, %v; want ErrCorrupt", what, s, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s: corrupt summary not removed", what)
	}
}

// reframe gives a copy of a framed file with its header changed and the
// checksum made right again: only the magic or version is wrong.
func reframe(b []byte, change func([]byte)) []byte {
	c := append([]byte(nil), b...)
	change(c)
	end := len(c) - frameTrailer
	binary.LittleEndian.PutUint32(c[end:], crc32.Checksum(c[:end], castagnoli))
	return c
}

func damageMatrix(good []byte, seed uint64) map[string][]byte {
	cases := map[string][]byte{}
	for i := range good {
		flips := []byte{0xff}
		if i%3 == 0 {
			flips = append(flips, 0x01, 0x80)
		}
		for _, x := range flips {
			c := append([]byte(nil), good...)
			c[i] ^= x
			cases["flip byte "+itoa(i)+" by "+itoa(int(x))] = c
		}
	}
	for n := 0; n < len(good); n++ {
		cases["truncated to "+itoa(n)] = append([]byte(nil), good[:n]...)
	}
	cases["one byte more"] = append(append([]byte(nil), good...), 0)
	cases["doubled"] = append(append([]byte(nil), good...), good...)
	cases["wrong version"] = reframe(good, func(c []byte) { c[8]++ })
	cases["wrong magic"] = reframe(good, func(c []byte) { c[0] = 'X' })
	cases["other magic"] = reframe(good, func(c []byte) { copy(c, magicLog[:]) })
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i < 50; i++ {
		g := make([]byte, rng.IntN(2*len(good)+1))
		for j := range g {
			g[j] = byte(rng.Uint32())
		}
		if i%5 == 0 && len(g) >= 8 {
			copy(g, good[:8]) // right magic, garbage after
		}
		cases["garbage "+itoa(i)] = g
	}
	return cases
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestCorruptSummary(t *testing.T) {
	x := openQuiet(t, t.TempDir(), nil)
	if err := x.StoreSummary("alice", "INBOX", &Summary{Spool: spoolN(1), UIDValidity: 5, UIDNext: 10, Messages: 9, Unseen: 2, Size: 4000}); err != nil {
		t.Fatal(err)
	}
	path := x.userDir("alice") + "/" + mailboxBase("INBOX") + extSummary
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("summary file: %d bytes", len(good))
	for what, data := range damageMatrix(good, 1) {
		checkCorruptSummary(t, x, path, data, what)
	}
	// The good file still loads.
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := x.LoadSummary("alice", "INBOX"); err != nil || s.Messages != 9 {
		t.Fatalf("good summary: %+v %v", s, err)
	}
	// Zero-length file.
	checkCorruptSummary(t, x, path, nil, "empty")
}

func TestCorruptIndex(t *testing.T) {
	x := openQuiet(t, t.TempDir(), nil)
	m := fillMailbox(t, x, "alice", "INBOX", 2)
	want := stateOf(m)
	m.Close()
	idxPath := m.base + extIndex
	good, err := os.ReadFile(idxPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("index file: %d bytes", len(good))
	for what, data := range damageMatrix(good, 2) {
		if err := os.WriteFile(idxPath, data, 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := x.LoadMailbox("alice", "INBOX")
		if !errors.Is(err, ErrCorrupt) {
			if err == nil {
				m.Close()
			}
			t.Fatalf("%s: LoadMailbox err %v, want ErrCorrupt", what, err)
		}
		if _, err := os.Stat(idxPath); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: corrupt index not removed", what)
		}
	}
	if err := os.WriteFile(idxPath, good, 0o600); err != nil {
		t.Fatal(err)
	}
	m2, err := x.LoadMailbox("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if !stateOf(m2).equal(want) {
		t.Fatal("good index loads wrong")
	}
	if x.Stats().Corrupt < int64(len(good)) {
		t.Errorf("corrupt files not counted: %+v", x.Stats())
	}
}

// TestCorruptLog damages the change log every way: a load must give one of
// the states that were saved (an older one is fine, its spool state says
// so), never a mix, and a Save after it must write a good index again.
func TestCorruptLog(t *testing.T) {
	x := openQuiet(t, t.TempDir(), nil)
	m := fillMailbox(t, x, "alice", "INBOX", 3)
	states := []state{stateOf(m)}
	for i := 1; i <= 3; i++ {
		rec, _ := m.Lookup(uint32(i))
		m.SetFlags(uint32(i), rec.Unique()+":2,T", false, FlagDeleted, nil)
		m.Upsert(Record{UID: uint32(10 + i), File: "f" + itoa(i), Keywords: []string{"k"}})
		if i == 2 {
			m.Remove(1)
		}
		m.SetUIDNext(uint32(11 + i))
		if err := m.Save(spoolN(int64(i))); err != nil {
			t.Fatal(err)
		}
		states = append(states, stateOf(m))
	}
	m.Close()
	if x.Stats().LogAppends != 3 {
		t.Fatalf("expected 3 log appends: %+v", x.Stats())
	}
	logPath := m.base + extLog
	idxPath := m.base + extIndex
	goodLog, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	goodIdx, err := os.ReadFile(idxPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("log file: %d bytes", len(goodLog))
	for what, data := range damageMatrix(goodLog, 3) {
		if err := os.WriteFile(idxPath, goodIdx, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(logPath, data, 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := x.LoadMailbox("alice", "INBOX")
		if err != nil {
			t.Fatalf("%s: LoadMailbox: %v", what, err)
		}
		got := stateOf(m)
		found := -1
		for i, s := range states {
			if got.equal(s) {
				found = i
			}
		}
		if found < 0 {
			t.Fatalf("%s: loaded a state that was never saved: %+v", what, got)
		}
		if len(data) == len(goodLog) && string(data) != string(goodLog) && found == len(states)-1 {
			t.Fatalf("%s: damaged log gave the newest state", what)
		}
		// Work goes on: a change and a Save give a good index.
		if len(data)%4 != 0 {
			m.Close()
			continue
		}
		m.Upsert(Record{UID: 500, File: "new"})
		if err := m.Save(spoolN(99)); err != nil {
			t.Fatalf("%s: Save: %v", what, err)
		}
		want := stateOf(m)
		m.Close()
		m2, err := x.LoadMailbox("alice", "INBOX")
		if err != nil {
			t.Fatalf("%s: reload: %v", what, err)
		}
		if !stateOf(m2).equal(want) {
			t.Fatalf("%s: Save after damage wrote a wrong index", what)
		}
		m2.Close()
	}
}
