package main

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// The checker is tested against a test double: go-imap's in-memory server
// behind a wrapper that breaks one promise on purpose. A checker that does
// not report the broken promise fails the test; one that reports anything
// against the honest double fails it too.

type fault string

const (
	faultNone       fault = ""
	faultDropAppend fault = "drop"  // every third APPEND is answered OK but not stored
	faultReuseUID   fault = "reuse" // APPENDUID names the previous message's UID
	faultWrongFlag  fault = "flags" // +FLAGS \Flagged stores \Seen instead
)

type faultySession struct {
	imapserver.Session
	fault fault

	mu      sync.Mutex
	appends int
	lastUID imap.UID
	fakeUID imap.UID
}

func (s *faultySession) Append(mailbox string, r imap.LiteralReader, opts *imap.AppendOptions) (*imap.AppendData, error) {
	s.mu.Lock()
	s.appends++
	n := s.appends
	s.mu.Unlock()
	if s.fault == faultDropAppend && n%3 == 0 && strings.HasPrefix(mailbox, "lt-") {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return nil, err
		}
		data, err := s.Session.Status(mailbox, &imap.StatusOptions{UIDNext: true, UIDValidity: true})
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.fakeUID = max(s.fakeUID+1, data.UIDNext+1000)
		return &imap.AppendData{UID: s.fakeUID, UIDValidity: data.UIDValidity}, nil
	}
	data, err := s.Session.Append(mailbox, r, opts)
	if err != nil {
		return nil, err
	}
	if s.fault == faultReuseUID && strings.HasPrefix(mailbox, "lt-") {
		s.mu.Lock()
		defer s.mu.Unlock()
		real := data.UID
		if s.lastUID != 0 && n%2 == 0 {
			data.UID = s.lastUID
		}
		s.lastUID = real
	}
	return data, nil
}

func (s *faultySession) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, opts *imap.StoreOptions) error {
	if s.fault == faultWrongFlag && flags.Op == imap.StoreFlagsAdd {
		changed := *flags
		changed.Flags = nil
		for _, f := range flags.Flags {
			if f == imap.FlagFlagged {
				f = imap.FlagSeen
			}
			changed.Flags = append(changed.Flags, f)
		}
		flags = &changed
	}
	return s.Session.Store(w, numSet, flags, opts)
}

func (s *faultySession) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	return s.Session.(imapserver.SessionMove).Move(w, numSet, dest)
}

func (s *faultySession) Namespace() (*imap.NamespaceData, error) {
	return s.Session.(imapserver.SessionNamespace).Namespace()
}

var _ imapserver.SessionIMAP4rev2 = (*faultySession)(nil)

// startDouble serves an in-memory IMAP server with the given fault on a
// loopback port.
func startDouble(t *testing.T, f fault, users ...string) string {
	t.Helper()
	mem := imapmemserver.New()
	for _, u := range users {
		user := imapmemserver.NewUser(u, "password")
		if err := user.Create("INBOX", nil); err != nil {
			t.Fatal(err)
		}
		mem.AddUser(user)
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &faultySession{Session: mem.NewSession(), fault: f}, nil, nil
		},
		// No MOVE: go-imap's in-memory server miscounts its MOVE
		// responses, so clients fall back to COPY, STORE and EXPUNGE.
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapIdle: {}, imap.CapID: {}},
		InsecureAuth: true,
		Logger:       testLogger{t},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Logf("double stopped: %v", err)
		}
	})
	return ln.Addr().String()
}

type testLogger struct{ t *testing.T }

func (l testLogger) Printf(format string, args ...any) { l.t.Logf("double: "+format, args...) }

func runAgainst(t *testing.T, addr string, mix map[string]float64, users int, d time.Duration) Result {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addrs = []string{addr}
	cfg.Users = users
	cfg.Mix = mix
	cfg.Duration = d
	cfg.Ramp = 0
	cfg.Think = 2 * time.Millisecond
	cfg.CommandTimeout = 10 * time.Second
	cfg.Progress = false
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return Run(context.Background(), cfg, io.Discard)
}

func userNames(n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, "user"+itoa(i))
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestCheckerQuietOnHonestServer(t *testing.T) {
	addr := startDouble(t, faultNone, userNames(4)...)
	res := runAgainst(t, addr, map[string]float64{"heavy": 2, "idle": 1, "desktop2": 1, "webmail": 1, "mobile": 1}, 4, 3*time.Second)
	for _, v := range res.Violations {
		t.Errorf("false violation: %s (%v)", v.What, v.Commands)
	}
	var total uint64
	for _, row := range res.Commands {
		if row.Command == "ALL" {
			total = row.Count
		}
		if row.Command == "APPEND" && row.Count == 0 {
			t.Error("no APPEND ran")
		}
	}
	if total < 50 {
		t.Fatalf("only %d commands in 3 s against an in-memory server", total)
	}
}

func TestCheckerCatchesFaults(t *testing.T) {
	for _, tc := range []struct {
		fault fault
		want  string
	}{
		{faultDropAppend, "lost"},
		{faultReuseUID, "UID reused"},
		{faultWrongFlag, "want"},
	} {
		t.Run(string(tc.fault), func(t *testing.T) {
			addr := startDouble(t, tc.fault, "user1")
			res := runAgainst(t, addr, map[string]float64{"heavy": 1}, 1, 2*time.Second)
			found := false
			for _, v := range res.Violations {
				if strings.Contains(v.What, tc.want) {
					found = true
					if len(v.Commands) == 0 {
						t.Errorf("violation %q has no command history", v.What)
					}
				}
			}
			if !found {
				var whats []string
				for _, v := range res.Violations {
					whats = append(whats, v.What)
				}
				t.Fatalf("fault %q not reported (want %q); violations: %q", tc.fault, tc.want, whats)
			}
		})
	}
}

func TestExitCodeOnViolation(t *testing.T) {
	addr := startDouble(t, faultReuseUID, "user1")
	var out strings.Builder
	code := realMain([]string{"-addr", addr, "-users", "1", "-mix", "heavy=1", "-duration", "1500ms",
		"-think", "2ms", "-progress=false"}, &out, io.Discard)
	if code != 1 {
		t.Fatalf("exit code %d, want 1; output:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "VIOLATION") {
		t.Fatalf("no violation printed:\n%s", out.String())
	}
}

func TestFlagsRejected(t *testing.T) {
	for _, args := range [][]string{
		{"-mix", "nosuch=1"},
		{"-tls", "maybe"},
		{"-users", "0"},
		{"-src", "127.0.0.9-127.0.0.1"},
		{"-user-format", "fixed"},
	} {
		if code := realMain(args, io.Discard, io.Discard); code != 2 {
			t.Errorf("%v: exit code %d, want 2", args, code)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.quantile(tc.q)
		if diff := float64(got-tc.want) / float64(tc.want); diff < -0.03 || diff > 0.03 {
			t.Errorf("quantile %.2f = %v, want %v ±3%%", tc.q, got, tc.want)
		}
	}
}

func TestAssignProfilesProportional(t *testing.T) {
	got := assignProfiles(map[string]float64{"heavy": 2, "idle": 1, "webmail": 3}, 6)
	count := map[string]int{}
	for _, p := range got {
		count[p]++
	}
	if count["heavy"] != 2 || count["idle"] != 1 || count["webmail"] != 3 {
		t.Fatalf("assignment %v", got)
	}
	few := assignProfiles(map[string]float64{"heavy": 1, "idle": 1, "webmail": 1, "mobile": 1, "desktop2": 1}, 5)
	seen := map[string]bool{}
	for _, p := range few {
		seen[p] = true
	}
	if len(seen) != 5 {
		t.Fatalf("5 users, 5 equal profiles: %v", few)
	}
}
