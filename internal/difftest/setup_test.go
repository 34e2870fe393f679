package difftest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nfsimap/nfsimap/internal/corpus"
	"github.com/nfsimap/nfsimap/internal/dovecot"
	"github.com/nfsimap/nfsimap/internal/e2e"
)

const (
	testUser     = "alice"
	testPassword = "wonderland"
)

// pair is the same corpus served by both servers, one client each, INBOX
// selected.
type pair struct {
	man  *corpus.Manifest
	msgs []corpus.Message // INBOX, oldest first: the index is the message's identity
	ours *Client
	dove *Client
	// uid maps a server's UID to the message index, per server.
	oursIdx, doveIdx map[uint32]int
	// sameOrder is true when both servers numbered the messages in the
	// same order (then sequence numbers coincide too).
	sameOrder bool

	// Dovecot's raw Subject of each message, fetched when first needed.
	subjectsOnce sync.Once
	subjects     map[int]string
	subjectsErr  error
}

// side names a server in messages.
type side int

const (
	ours side = iota
	dove
)

func (s side) String() string {
	if s == ours {
		return "nfsimap"
	}
	return "dovecot"
}

func (p *pair) client(s side) *Client {
	if s == ours {
		return p.ours
	}
	return p.dove
}

func (p *pair) index(s side) map[uint32]int {
	if s == ours {
		return p.oursIdx
	}
	return p.doveIdx
}

// startPair generates the corpus twice (the generator is deterministic, so
// both spools are byte for byte the same, mtimes included), starts Dovecot
// on one and nfsimap on the other, and selects INBOX on both. Dovecot is
// started first: it skips the test (or fails it under CI) when unavailable.
// Each prepare function runs on both generated spools before the servers
// start.
func startPair(t *testing.T, opt corpus.Options, prepare ...func(*testing.T, *corpus.Manifest)) *pair {
	t.Helper()
	users := map[string]string{testUser: testPassword}
	doveSpool := t.TempDir()
	man, err := corpus.Generate(filepath.Join(doveSpool, testUser), opt)
	if err != nil {
		t.Fatal(err)
	}
	fixVirtualSizes(t, man)
	for _, f := range prepare {
		f(t, man)
	}
	ds := dovecot.Start(t, doveSpool, users)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dovecot log:\n%s", tail(ds.Log(), 6000))
		}
	})
	oursSpool := t.TempDir()
	man2, err := corpus.Generate(filepath.Join(oursSpool, testUser), opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(man2.Messages) != len(man.Messages) {
		t.Fatalf("corpus not deterministic: %d and %d messages", len(man.Messages), len(man2.Messages))
	}
	fixVirtualSizes(t, man2)
	for _, f := range prepare {
		f(t, man2)
	}
	node := e2e.Start(t, e2e.Options{Spool: oursSpool, Users: users})

	p := &pair{man: man, msgs: man.InFolder("INBOX")}
	p.ours = login(t, node.Addr)
	p.dove = login(t, ds.Addr())
	for _, s := range []side{ours, dove} {
		idx, err := p.identify(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if s == ours {
			p.oursIdx = idx
		} else {
			p.doveIdx = idx
		}
	}
	p.sameOrder = sameOrder(p.oursIdx, p.doveIdx)
	t.Logf("%d messages in INBOX; both servers number them in the same order: %v", len(p.msgs), p.sameOrder)
	return p
}

func login(t testing.TB, addr string) *Client {
	t.Helper()
	c, err := Dial(addr, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Login(testUser, testPassword); err != nil {
		t.Fatal(err)
	}
	if err := c.Select("INBOX"); err != nil {
		t.Fatal(err)
	}
	return c
}

// identify maps each UID of a server to the message index in the manifest,
// by INTERNALDATE: the corpus gives every message its own mtime (whole
// seconds, at least two minutes apart), and both servers take the internal
// date of a maildir message from its file's mtime.
func (p *pair) identify(s side) (map[uint32]int, error) {
	byDate := make(map[int64]int, len(p.msgs))
	for i, m := range p.msgs {
		byDate[m.Date.Unix()] = i
	}
	resps, err := p.client(s).Command("FETCH 1:* (UID INTERNALDATE)")
	if err != nil {
		return nil, err
	}
	idx := make(map[uint32]int, len(resps))
	for _, r := range resps {
		if r.Name != "FETCH" {
			continue
		}
		items, err := FetchItems(r)
		if err != nil {
			return nil, err
		}
		uid, err := items["UID"].Number()
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", r.Num, err)
		}
		d, err := time.Parse("_2-Jan-2006 15:04:05 -0700", items["INTERNALDATE"].Str)
		if err != nil {
			return nil, fmt.Errorf("message %d: INTERNALDATE: %w", r.Num, err)
		}
		i, ok := byDate[d.Unix()]
		if !ok {
			return nil, fmt.Errorf("message %d: INTERNALDATE %s matches no generated message", r.Num, d)
		}
		idx[uint32(uid)] = i
	}
	if len(idx) != len(p.msgs) {
		return nil, fmt.Errorf("%d messages in INBOX, %d generated", len(idx), len(p.msgs))
	}
	return idx, nil
}

// sameOrder reports whether ascending UIDs give the same message order on
// both servers.
func sameOrder(a, b map[uint32]int) bool {
	return equalInts(indexesInUIDOrder(a), indexesInUIDOrder(b))
}

func indexesInUIDOrder(m map[uint32]int) []int {
	uids := make([]uint32, 0, len(m))
	for u := range m {
		uids = append(uids, u)
	}
	sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
	out := make([]int, len(uids))
	for i, u := range uids {
		out[i] = m[u]
	}
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// fetchAll sends "UID FETCH 1:* (UID items)" to one server and returns
// message index -> item name -> value.
func (p *pair) fetchAll(s side, items string) (map[int]map[string]Value, error) {
	resps, err := p.client(s).Command("UID FETCH 1:* (UID " + items + ")")
	if err != nil {
		return nil, err
	}
	out := make(map[int]map[string]Value, len(resps))
	for _, r := range resps {
		if r.Name != "FETCH" {
			continue
		}
		it, err := FetchItems(r)
		if err != nil {
			return nil, err
		}
		uid, err := it["UID"].Number()
		if err != nil {
			return nil, err
		}
		i, ok := p.index(s)[uint32(uid)]
		if !ok {
			return nil, fmt.Errorf("%s: FETCH for unknown UID %d", s, uid)
		}
		if prev, ok := out[i]; ok { // several FETCH responses for one message
			for k, v := range it {
				prev[k] = v
			}
			continue
		}
		out[i] = it
	}
	return out, nil
}

// errStatus reports whether err is a tagged NO/BAD.
func errStatus(err error) bool {
	var se *StatusError
	return errors.As(err, &se)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

// fixVirtualSizes renames the corpus files whose name has a ",W=" field
// (Dovecot's virtual size: the size with CRLF line ends) to carry the true
// value. The generator writes made-up W values; Dovecot trusts them, and
// on a FETCH BODY[] that gets fewer bytes than announced it logs "Broken
// virtual size", renames the file and drops the connection. A wrong W is
// spool corruption, not what these tests compare.
func fixVirtualSizes(t *testing.T, man *corpus.Manifest) {
	t.Helper()
	for i := range man.Messages {
		m := &man.Messages[i]
		w := strings.Index(m.Name, ",W=")
		if w < 0 {
			continue
		}
		full := filepath.Join(man.Dir, m.Path)
		data, err := os.ReadFile(full)
		if err != nil {
			t.Fatal(err)
		}
		end := w + 3
		for end < len(m.Name) && m.Name[end] >= '0' && m.Name[end] <= '9' {
			end++
		}
		name := m.Name[:w+3] + strconv.Itoa(crlfSize(data)) + m.Name[end:]
		path := filepath.Join(filepath.Dir(m.Path), name)
		if err := os.Rename(full, filepath.Join(man.Dir, path)); err != nil {
			t.Fatal(err)
		}
		m.Name, m.Path = name, path
	}
}

// crlfSize is the size of data with every bare LF counted as CRLF.
func crlfSize(data []byte) int {
	n := len(data)
	for i, c := range data {
		if c == '\n' && (i == 0 || data[i-1] != '\r') {
			n++
		}
	}
	return n
}
