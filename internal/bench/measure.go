package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Target is one server under test.
type Target struct {
	Name string
	Addr string
	// Spool is the root of the server's spool copy (SPOOL/USER are the
	// users' maildirs).
	Spool string
	// Processes returns the server's processes now: for nfsimap the node,
	// for Dovecot the master and all its children.
	Processes func() ([]Stat, error)
}

// SourceAddrs returns n loopback source addresses 127.0.0.2 ...
// 127.0.0.(n+1), so many connections to one server port need not share
// one address's port range.
func SourceAddrs(n int) []*net.TCPAddr {
	out := make([]*net.TCPAddr, n)
	for i := range out {
		out[i] = &net.TCPAddr{IP: net.IPv4(127, 0, byte((i+2)/256), byte((i+2)%256))}
	}
	return out
}

// LoginResult is the outcome of MeasureLogins.
type LoginResult struct {
	Workers    int     `json:"workers"`
	Seconds    float64 `json:"seconds"`
	Logins     int     `json:"logins"`
	Errors     int     `json:"errors"`
	PerSec     float64 `json:"per_second"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	FirstError string  `json:"first_error,omitempty"`
}

// MeasureLogins runs workers loops of connect, LOGIN, LOGOUT over fresh
// connections for d and counts the completed ones. Users are taken in
// turn; connections come from src in turn (nil: the system's choice).
func MeasureLogins(ctx context.Context, addr string, users []string, password string, workers int, d time.Duration, src []*net.TCPAddr) LoginResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		next     atomic.Int64
		mu       sync.Mutex
		lats     []time.Duration
		errs     int
		firstErr string
		wg       sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var myErrs int
			var myFirst string
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				var local *net.TCPAddr
				if len(src) > 0 {
					local = src[i%len(src)]
				}
				t0 := time.Now()
				err := loginLogout(addr, local, users[i%len(users)], password)
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					myErrs++
					if myFirst == "" {
						myFirst = err.Error()
					}
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, mine...)
			errs += myErrs
			if firstErr == "" {
				firstErr = myFirst
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	return LoginResult{
		Workers: workers, Seconds: el, Logins: len(lats), Errors: errs,
		PerSec: float64(len(lats)) / el, P50Ms: quantileMs(lats, 0.5), P99Ms: quantileMs(lats, 0.99),
		FirstError: firstErr,
	}
}

func loginLogout(addr string, local *net.TCPAddr, user, password string) error {
	c, err := Dial(addr, local, 30*time.Second)
	if err != nil {
		return err
	}
	if err := c.Login(user, password); err != nil {
		c.Close()
		return err
	}
	return c.Logout()
}

// quantileMs is the q quantile of sorted durations in milliseconds.
func quantileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)) + 0.5)
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	if i > 0 && q < 1 {
		i--
	}
	return float64(sorted[i]) / float64(time.Millisecond)
}

// CommMemory is the memory of the processes with one command name.
type CommMemory struct {
	Procs int `json:"procs"`
	Memory
}

// MemSnapshot is the summed memory of a server's processes.
type MemSnapshot struct {
	Procs  int                   `json:"procs"`
	Total  Memory                `json:"total_kib"`
	ByComm map[string]CommMemory `json:"by_comm"`
}

// Snapshot reads the memory of every process t.Processes lists.
func (t Target) Snapshot(p Proc) (MemSnapshot, error) {
	procs, err := t.Processes()
	if err != nil {
		return MemSnapshot{}, err
	}
	s := MemSnapshot{ByComm: map[string]CommMemory{}}
	for _, st := range procs {
		m, err := p.ProcessMemory(st.PID)
		if err != nil {
			continue // exited meanwhile
		}
		s.Procs++
		s.Total = s.Total.Add(m)
		cm := s.ByComm[st.Comm]
		cm.Procs++
		cm.Memory = cm.Memory.Add(m)
		s.ByComm[st.Comm] = cm
	}
	if s.Procs == 0 {
		return s, fmt.Errorf("%s: no processes to measure", t.Name)
	}
	return s, nil
}

// IdleResult is the outcome of MeasureIdle.
type IdleResult struct {
	Target      int         `json:"target"`
	Reached     int         `json:"reached"`
	Errors      int         `json:"errors"`
	FirstError  string      `json:"first_error,omitempty"`
	Stopped     string      `json:"stopped,omitempty"`
	OpenSeconds float64     `json:"open_seconds"`
	Before      MemSnapshot `json:"before"`
	After       MemSnapshot `json:"after"`
	// PerConn is (After - Before) / Reached, in KiB, over all the
	// server's processes.
	PerConnRSS float64 `json:"per_conn_rss_kib"`
	PerConnPSS float64 `json:"per_conn_pss_kib"`
}

// IdlePlan says how MeasureIdle opens its connections.
type IdlePlan struct {
	Users    []string
	Password string
	Conns    int
	Workers  int
	Src      []*net.TCPAddr
	// MinAvailableKiB stops opening connections when the machine's
	// MemAvailable falls below it (the bench shares the machine).
	MinAvailableKiB int64
	// Settle is how long to wait after the last connection went idle
	// before reading memory (lets the servers finish their login work).
	Settle time.Duration
}

// MeasureIdle reads the server's memory, opens plan.Conns connections
// that each log in, SELECT INBOX and IDLE (connection i as user
// Users[i%len(Users)] from Src[(i/len(Users))%len(Src)]), reads the
// memory again and closes them all.
func MeasureIdle(ctx context.Context, t Target, p Proc, plan IdlePlan) (IdleResult, error) {
	res := IdleResult{Target: plan.Conns}
	var err error
	if res.Before, err = t.Snapshot(p); err != nil {
		return res, err
	}
	conns := make([]*Conn, plan.Conns)
	var (
		next    atomic.Int64
		stop    atomic.Bool
		mu      sync.Mutex
		stopped string
		wg      sync.WaitGroup
		errs    atomic.Int64
		first   sync.Once
		firstE  string
	)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	start := time.Now()
	for w := 0; w < plan.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() && ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= plan.Conns {
					return
				}
				if i%200 == 0 && plan.MinAvailableKiB > 0 {
					if avail, err := p.MemAvailable(); err == nil && avail < plan.MinAvailableKiB {
						mu.Lock()
						stopped = fmt.Sprintf("stopped at %d connections: MemAvailable %d MiB below the floor of %d MiB", i, avail>>10, plan.MinAvailableKiB>>10)
						mu.Unlock()
						stop.Store(true)
						return
					}
				}
				var local *net.TCPAddr
				if len(plan.Src) > 0 {
					local = plan.Src[(i/len(plan.Users))%len(plan.Src)]
				}
				c, err := openIdle(t.Addr, local, plan.Users[i%len(plan.Users)], plan.Password)
				if err != nil {
					errs.Add(1)
					first.Do(func() { firstE = err.Error() })
					if errs.Load() > 50 {
						mu.Lock()
						stopped = "stopped after 50 failed connections"
						mu.Unlock()
						stop.Store(true)
					}
					continue
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	res.OpenSeconds = time.Since(start).Seconds()
	res.Stopped, res.Errors, res.FirstError = stopped, int(errs.Load()), firstE
	for _, c := range conns {
		if c != nil {
			res.Reached++
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if plan.Settle > 0 {
		select {
		case <-time.After(plan.Settle):
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	if res.After, err = t.Snapshot(p); err != nil {
		return res, err
	}
	if res.Reached > 0 {
		d := res.After.Total.Sub(res.Before.Total)
		res.PerConnRSS = float64(d.RSS) / float64(res.Reached)
		res.PerConnPSS = float64(d.PSS) / float64(res.Reached)
	}
	return res, nil
}

func openIdle(addr string, local *net.TCPAddr, user, password string) (*Conn, error) {
	c, err := Dial(addr, local, time.Minute)
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, password); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.Command("SELECT INBOX"); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.Idle(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// SpoolOpsPlan is the scripted sequence whose spool operations are
// counted.
type SpoolOpsPlan struct {
	User, Password string
	// Folder is a folder of User besides INBOX.
	Folder string
	// Repeat is how often each command runs.
	Repeat int
	// TraceFile receives strace's output.
	TraceFile string
	// Settle is how long to wait, untraced, after the commands that
	// change the spool (the warm-up, the SELECT that takes in the
	// deliveries) before the phases that measure an unchanged mailbox.
	// Both servers list a directory again while its mtime is younger
	// than their mtime granularity allows them to trust (Dovecot 1 s,
	// nfsimap 2 s), so without the wait those phases would count the
	// listings of a just-changed mailbox. Zero: no wait.
	Settle time.Duration
}

// DefaultSpoolSettle is SpoolOpsPlan.Settle for the bench: longer than
// either server's trust limit for fresh mtimes.
const DefaultSpoolSettle = 3 * time.Second

// pause waits d or until ctx is done.
func pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Phase names of the spool operation count, in order.
const (
	PhaseStatusFolder = "STATUS of an unchanged folder"
	PhaseStatusInbox  = "STATUS INBOX, unchanged"
	PhaseStatusNew    = "STATUS INBOX after a delivery to new/"
	PhaseSelect       = "SELECT of the unchanged INBOX"
	PhaseFetchFlags   = "FETCH 1:* (FLAGS)"
	PhaseUnselect     = "UNSELECT"
	PhaseSelectNew    = "SELECT INBOX after a delivery to new/"
	// phaseOther is a command outside the phases, not reported.
	phaseOther = "(other)"
)

// MeasureSpoolOps logs in as plan.User, warms up, attaches strace to the
// server process(es) holding the connection and runs each command of the
// sequence plan.Repeat times, then counts the system calls naming a path
// under t.Spool per command. Deliveries into new/ are made by this process
// between commands (not traced).
func MeasureSpoolOps(ctx context.Context, t Target, p Proc, plan SpoolOpsPlan) ([]SpoolCalls, error) {
	c, err := Dial(t.Addr, nil, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Login(plan.User, plan.Password); err != nil {
		return nil, err
	}
	inbox := filepath.Join(t.Spool, plan.User)
	statusFolder := "STATUS " + quote(plan.Folder) + " (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)"
	const statusInbox = "STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)"
	// Warm up: the first SELECT moves new/ to cur/ and builds indexes;
	// once the changes have settled, each STATUS reads the mailbox once
	// more and keeps what it found as unchanged.
	for _, cmd := range []string{"SELECT INBOX", "FETCH 1:* (FLAGS)", "UNSELECT", statusFolder, statusInbox, statusInbox} {
		if _, err := c.Command(cmd); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	if err := pause(ctx, plan.Settle); err != nil {
		return nil, err
	}
	for _, cmd := range []string{statusFolder, statusInbox} {
		if _, err := c.Command(cmd); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	client, err := netip.ParseAddrPort(c.NetConn().LocalAddr().String())
	if err != nil {
		return nil, err
	}
	server, err := netip.ParseAddrPort(c.NetConn().RemoteAddr().String())
	if err != nil {
		return nil, err
	}
	pids, err := p.ServerPIDs(client, server)
	if err != nil {
		return nil, err
	}
	tr, err := StartTrace(ctx, pids, plan.TraceFile)
	if err != nil {
		return nil, err
	}
	var windows []Window
	run := func(phase, cmd string) error {
		t0 := time.Now()
		if _, err := c.Command(cmd); err != nil {
			return fmt.Errorf("%s: %w", phase, err)
		}
		windows = append(windows, Window{Name: phase, Start: t0, End: time.Now(), Commands: 1})
		return nil
	}
	seq := func() error {
		for i := 0; i < plan.Repeat; i++ {
			if err := run(PhaseStatusFolder, statusFolder); err != nil {
				return err
			}
		}
		for i := 0; i < plan.Repeat; i++ {
			if err := run(PhaseStatusInbox, statusInbox); err != nil {
				return err
			}
		}
		for i := 0; i < plan.Repeat; i++ {
			if _, err := DeliverNew(inbox, i); err != nil {
				return err
			}
			if err := run(PhaseStatusNew, statusInbox); err != nil {
				return err
			}
		}
		if err := run(phaseOther, "SELECT INBOX"); err != nil { // takes in the deliveries
			return err
		}
		if plan.Settle > 0 {
			if err := pause(ctx, plan.Settle); err != nil {
				return err
			}
			if err := run(phaseOther, "SELECT INBOX"); err != nil { // reads the settled INBOX once more
				return err
			}
		}
		for i := 0; i < plan.Repeat; i++ {
			if err := run(PhaseSelect, "SELECT INBOX"); err != nil {
				return err
			}
		}
		for i := 0; i < plan.Repeat; i++ {
			if err := run(PhaseFetchFlags, "FETCH 1:* (FLAGS)"); err != nil {
				return err
			}
		}
		for i := 0; i < plan.Repeat; i++ {
			if err := run(PhaseUnselect, "UNSELECT"); err != nil {
				return err
			}
			if _, err := DeliverNew(inbox, plan.Repeat+i); err != nil {
				return err
			}
			if err := run(PhaseSelectNew, "SELECT INBOX"); err != nil {
				return err
			}
		}
		return nil
	}
	seqErr := seq()
	traceEnd := time.Now()
	stopErr := tr.Stop()
	if err := errors.Join(seqErr, stopErr); err != nil {
		return nil, err
	}
	_ = c.Logout()
	f, err := os.Open(plan.TraceFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// A command's span runs to the next command's start, so what a server
	// does after its reply counts too; commands outside the phases (the
	// SELECT that takes in the deliveries) get spans of their own.
	extendWindows(windows, traceEnd)
	calls, err := CountSpoolCalls(f, t.Spool, windows)
	if err != nil {
		return nil, err
	}
	phases := []string{PhaseStatusFolder, PhaseStatusInbox, PhaseStatusNew, PhaseSelect, PhaseFetchFlags, PhaseUnselect, PhaseSelectNew}
	return aggregate(calls, phases), nil
}

// extendWindows makes each window (in time order) end where the next
// begins, and the last at end.
func extendWindows(windows []Window, end time.Time) {
	for i := range windows {
		if i+1 < len(windows) {
			windows[i].End = windows[i+1].Start
		} else if end.After(windows[i].End) {
			windows[i].End = end
		}
	}
}

// aggregate sums per-window counts by phase name, in the order given.
func aggregate(calls []SpoolCalls, order []string) []SpoolCalls {
	byName := map[string]*SpoolCalls{}
	for _, c := range calls {
		a := byName[c.Phase]
		if a == nil {
			a = &SpoolCalls{Phase: c.Phase, BySyscall: map[string]int{}}
			byName[c.Phase] = a
		}
		a.Commands += c.Commands
		a.Total += c.Total
		a.Local += c.Local
		for k, v := range c.BySyscall {
			a.BySyscall[k] += v
		}
	}
	var out []SpoolCalls
	for _, name := range order {
		if a := byName[name]; a != nil {
			out = append(out, *a)
		}
	}
	return out
}

// SortTiming is one SORT or THREAD command's latency.
type SortTiming struct {
	Command  string  `json:"command"`
	FirstMs  float64 `json:"first_ms"`
	MedianMs float64 `json:"median_ms"`
	Runs     int     `json:"runs"`
	// Numbers is how many message numbers the answer held.
	Numbers int `json:"numbers"`
	// Digest identifies Answer, to compare servers.
	Digest string `json:"digest"`
	// Compared is the command whose answer Answer is, when not Command
	// itself (see sortCompareForm).
	Compared string `json:"compared,omitempty"`
	// Answer is the untagged SORT or THREAD response of the first run (or
	// of Compared), with each sequence number replaced by its message's key (see
	// SortResult.Keys), so answers of servers that number the messages
	// differently compare.
	Answer string `json:"-"`
	Error  string `json:"error,omitempty"`
}

// SortResult is the outcome of MeasureSortThread.
type SortResult struct {
	Messages int          `json:"messages"`
	SelectMs float64      `json:"first_select_ms"`
	Commands []SortTiming `json:"commands"`
	// Keys identify the messages in sequence order (by internal date);
	// IDs are their Message-ID fields as the server returned them.
	Keys []string `json:"-"`
	IDs  []string `json:"-"`
}

// SortCommands are the commands MeasureSortThread times.
var SortCommands = []string{
	"SORT (SUBJECT) UTF-8 ALL",
	"SORT (REVERSE DATE) UTF-8 ALL",
	"THREAD REFERENCES UTF-8 ALL",
}

// sortCompareForm gives the command whose answer is compared between
// servers in place of a timed one: with ARRIVAL as the last key, ties are
// broken by internal date (the files' mtimes, the same in every copy)
// rather than by sequence number, which servers may assign differently.
var sortCompareForm = map[string]string{
	"SORT (SUBJECT) UTF-8 ALL":      "SORT (SUBJECT ARRIVAL) UTF-8 ALL",
	"SORT (REVERSE DATE) UTF-8 ALL": "SORT (REVERSE DATE ARRIVAL) UTF-8 ALL",
}

// MeasureSortThread selects user's INBOX (timing the first SELECT, which
// builds the server's index) and runs each of SortCommands runs times:
// the first run and the median of the others are reported.
func MeasureSortThread(ctx context.Context, addr, user, password string, runs int) (SortResult, error) {
	var res SortResult
	c, err := Dial(addr, nil, 10*time.Minute)
	if err != nil {
		return res, err
	}
	defer c.Close()
	if err := c.Login(user, password); err != nil {
		return res, err
	}
	t0 := time.Now()
	lines, err := c.Command("SELECT INBOX")
	if err != nil {
		return res, err
	}
	res.SelectMs = ms(time.Since(t0))
	res.Messages = existsCount(lines)
	lines, err = c.Command("FETCH 1:* (INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
	if err != nil {
		return res, err
	}
	res.Keys, res.IDs = messageKeys(lines, res.Messages)
	for _, cmd := range SortCommands {
		st := SortTiming{Command: cmd}
		var lats []time.Duration
		for i := 0; i < runs && ctx.Err() == nil; i++ {
			t0 := time.Now()
			lines, err := c.Command(cmd)
			d := time.Since(t0)
			if err != nil {
				st.Error = err.Error()
				break
			}
			if i == 0 {
				st.FirstMs = ms(d)
				st.Numbers, _ = answerDigest(lines)
				st.Answer = withKeys(answerText(lines), res.Keys)
				continue
			}
			lats = append(lats, d)
			st.Runs++
		}
		sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
		if len(lats) > 0 {
			st.MedianMs = ms(lats[len(lats)/2])
		}
		if cmp, ok := sortCompareForm[cmd]; ok && st.Error == "" && ctx.Err() == nil {
			lines, err := c.Command(cmp)
			if err != nil {
				st.Error = err.Error()
			} else {
				st.Compared = cmp
				st.Answer = withKeys(answerText(lines), res.Keys)
			}
		}
		sum := sha256.Sum256([]byte(st.Answer))
		st.Digest = hex.EncodeToString(sum[:6])
		res.Commands = append(res.Commands, st)
	}
	_ = c.Logout()
	return res, ctx.Err()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// existsCount finds "* N EXISTS" among untagged lines.
func existsCount(lines [][]byte) int {
	for _, l := range lines {
		f := strings.Fields(string(l))
		if len(f) == 3 && f[0] == "*" && strings.EqualFold(f[2], "EXISTS") {
			if n, err := strconv.Atoi(f[1]); err == nil {
				return n
			}
		}
	}
	return 0
}

// answerText joins the "* SORT" and "* THREAD" lines.
func answerText(lines [][]byte) string {
	var parts []string
	for _, l := range lines {
		up := bytes.ToUpper(l)
		if bytes.HasPrefix(up, []byte("* SORT")) || bytes.HasPrefix(up, []byte("* THREAD")) {
			parts = append(parts, string(bytes.TrimRight(l, " ")))
		}
	}
	return strings.Join(parts, "\n")
}

// messageKeys reads FETCH responses with INTERNALDATE and the Message-ID
// header field. It returns a key per sequence number, "t" and the
// internal date in Unix seconds ("?n" when the server sent none for n),
// and the Message-ID field's value per sequence number ("" when absent).
// Internal dates are the files' mtimes, the same in every copy of the
// spool and distinct in a generated one.
func messageKeys(lines [][]byte, n int) (keys, ids []string) {
	keys = make([]string, n)
	ids = make([]string, n)
	for i := range keys {
		keys[i] = "?" + strconv.Itoa(i+1)
	}
	for _, l := range lines {
		f := bytes.Fields(l)
		if len(f) < 3 || string(f[0]) != "*" || !bytes.EqualFold(f[2], []byte("FETCH")) {
			continue
		}
		seq, err := strconv.Atoi(string(f[1]))
		if err != nil || seq < 1 || seq > n {
			continue
		}
		if i := bytes.Index(bytes.ToUpper(l), []byte("INTERNALDATE \"")); i >= 0 {
			rest := l[i+len("INTERNALDATE \""):]
			if j := bytes.IndexByte(rest, '"'); j >= 0 {
				if t, err := time.Parse("_2-Jan-2006 15:04:05 -0700", string(rest[:j])); err == nil {
					keys[seq-1] = "t" + strconv.FormatInt(t.Unix(), 10)
				}
			}
		}
		if i := bytes.Index(bytes.ToLower(l), []byte("message-id:")); i >= 0 {
			rest := l[i+len("message-id:"):]
			if j := bytes.IndexByte(rest, '\r'); j >= 0 {
				rest = rest[:j]
			}
			ids[seq-1] = string(bytes.Join(bytes.Fields(rest), nil))
		}
	}
	return keys, ids
}

// DiffIDs compares two servers' Message-ID fields by message key and
// describes the first of the messages where they differ ("" when none).
func DiffIDs(keysA, idsA, keysB, idsB []string) string {
	b := map[string]string{}
	for i, k := range keysB {
		b[k] = idsB[i]
	}
	n, first := 0, ""
	for i, k := range keysA {
		if idB, ok := b[k]; ok && idB != idsA[i] {
			if n == 0 {
				first = fmt.Sprintf("message with internal date %s: %q vs %q", k, idsA[i], idB)
			}
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d messages, first %s", n, first)
}

// withKeys replaces each number in a SORT or THREAD answer by keys[n-1].
func withKeys(answer string, keys []string) string {
	var b strings.Builder
	for i := 0; i < len(answer); {
		if answer[i] < '0' || answer[i] > '9' {
			b.WriteByte(answer[i])
			i++
			continue
		}
		j := i
		for j < len(answer) && answer[j] >= '0' && answer[j] <= '9' {
			j++
		}
		n, err := strconv.Atoi(answer[i:j])
		if err == nil && n >= 1 && n <= len(keys) {
			b.WriteString(keys[n-1])
		} else {
			b.WriteString(answer[i:j])
		}
		i = j
	}
	return b.String()
}

// SameOrder describes where two servers' sequence orders (as keys)
// first differ, "" when they agree.
func SameOrder(a, b []string) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d vs %d messages", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			return fmt.Sprintf("first difference at sequence number %d: %s vs %s", i+1, a[i], b[i])
		}
	}
	return ""
}

// DiffAnswers describes where two SORT or THREAD answers first differ,
// "" when they are the same.
func DiffAnswers(a, b string) string {
	if a == b {
		return ""
	}
	ta, tb := strings.Fields(a), strings.Fields(b)
	n := min(len(ta), len(tb))
	i := 0
	for i < n && ta[i] == tb[i] {
		i++
	}
	around := func(t []string) string {
		lo, hi := max(i-3, 0), min(i+4, len(t))
		return strings.Join(t[lo:hi], " ")
	}
	return fmt.Sprintf("first difference at word %d of %d/%d: %q vs %q", i, len(ta), len(tb), around(ta), around(tb))
}

// answerDigest hashes the "* SORT" or "* THREAD" lines and counts the
// numbers in them.
func answerDigest(lines [][]byte) (int, string) {
	h := sha256.New()
	n := 0
	for _, l := range lines {
		up := bytes.ToUpper(l)
		if !bytes.HasPrefix(up, []byte("* SORT")) && !bytes.HasPrefix(up, []byte("* THREAD")) {
			continue
		}
		h.Write(bytes.TrimRight(l, " "))
		h.Write([]byte{'\n'})
		sc := bufio.NewScanner(bytes.NewReader(l))
		sc.Split(bufio.ScanRunes)
		in := false
		for sc.Scan() {
			isDigit := sc.Text() >= "0" && sc.Text() <= "9" && len(sc.Text()) == 1
			if isDigit && !in {
				n++
			}
			in = isDigit
		}
	}
	return n, hex.EncodeToString(h.Sum(nil))[:12]
}
