package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Trace is strace attached to running processes, writing every file and
// descriptor system call (with descriptors resolved to paths by -y and
// wall-clock timestamps) to a file.
type Trace struct {
	cmd  *exec.Cmd
	out  string
	done chan error
}

// StartTrace attaches strace to pids (all their threads, and children
// forked later) and returns once every thread is traced. Output goes to
// outPath. The caller must call Stop.
func StartTrace(ctx context.Context, pids []int, outPath string) (*Trace, error) {
	if len(pids) == 0 {
		return nil, errors.New("strace: no processes")
	}
	args := []string{"-f", "-ttt", "-y", "-qq", "-e", "trace=%file,%desc", "-e", "signal=none", "-o", outPath}
	for _, p := range pids {
		args = append(args, "-p", strconv.Itoa(p))
	}
	cmd := exec.Command("strace", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("strace: %w", err)
	}
	t := &Trace{cmd: cmd, out: outPath, done: make(chan error, 1)}
	go func() { t.done <- cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, err := allTraced(pids, cmd.Process.Pid)
		if err != nil || ok {
			if err != nil {
				_ = t.Stop()
				return nil, err
			}
			return t, nil
		}
		select {
		case err := <-t.done:
			return nil, fmt.Errorf("strace exited before attaching: %v: %s", err, stderr.String())
		case <-ctx.Done():
			_ = t.Stop()
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond): // polling with a deadline
		}
		if time.Now().After(deadline) {
			_ = t.Stop()
			return nil, fmt.Errorf("strace did not attach within 15s: %s", stderr.String())
		}
	}
}

// allTraced reports whether every thread of pids has tracer as TracerPid.
func allTraced(pids []int, tracer int) (bool, error) {
	for _, pid := range pids {
		tasks, err := os.ReadDir(filepath.Join(procRoot, strconv.Itoa(pid), "task"))
		if err != nil {
			return false, fmt.Errorf("strace target %d: %w", pid, err)
		}
		for _, task := range tasks {
			status, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "task", task.Name(), "status"))
			if err != nil {
				continue // thread gone
			}
			tp, err := procField(status, "TracerPid:")
			if err != nil {
				return false, err
			}
			if int(tp) != tracer {
				return false, nil
			}
		}
	}
	return true, nil
}

// Stop detaches strace (SIGINT) and waits for it to finish writing.
func (t *Trace) Stop() error {
	_ = t.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-t.done:
		t.done <- err
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			return fmt.Errorf("strace: %w", err)
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = t.cmd.Process.Kill()
		return errors.New("strace did not stop within 30s of SIGINT; killed")
	}
}

// Path returns the output file.
func (t *Trace) Path() string { return t.out }

// Window is a named span of wall-clock time (a phase of the scripted
// sequence), with the number of commands sent in it.
type Window struct {
	Name     string
	Start    time.Time
	End      time.Time
	Commands int
}

// SpoolCalls are the system calls of one window that named a spool path.
type SpoolCalls struct {
	Phase    string `json:"phase"`
	Commands int    `json:"commands"`
	Total    int    `json:"total"`
	// Local counts the calls among Total that never reach a file server:
	// lseek, epoll_ctl (Go offers every file to its poller) and fcntl on
	// descriptor flags (not locks).
	Local     int            `json:"local"`
	BySyscall map[string]int `json:"by_syscall"`
}

// PerCommand is Total divided by Commands.
func (s SpoolCalls) PerCommand() float64 {
	if s.Commands == 0 {
		return math.NaN()
	}
	return float64(s.Total) / float64(s.Commands)
}

// FilerPerCommand is Total without Local, divided by Commands: the calls
// that may cost a round trip to an NFS server.
func (s SpoolCalls) FilerPerCommand() float64 {
	if s.Commands == 0 {
		return math.NaN()
	}
	return float64(s.Total-s.Local) / float64(s.Commands)
}

// localOnly reports whether a call never reaches the file server: lseek,
// epoll_ctl, and fcntl that reads or sets descriptor or status flags or
// duplicates.
func localOnly(name string, rest []byte) bool {
	switch name {
	case "lseek", "epoll_ctl":
		return true
	case "fcntl", "fcntl64":
	default:
		return false
	}
	args := rest[len(name)+1:]
	// Skip the descriptor and its -y annotation, which may hold commas.
	if i := bytes.IndexByte(args, '<'); i >= 0 && i < bytes.IndexByte(args, ',') {
		if j := bytes.Index(args[i:], []byte(">, ")); j >= 0 {
			args = args[i+j+1:]
		}
	}
	_, cmd, ok := bytes.Cut(args, []byte(", "))
	if !ok {
		return false
	}
	for _, c := range []string{"F_GETFL", "F_SETFL", "F_GETFD", "F_SETFD", "F_DUPFD"} {
		if bytes.HasPrefix(cmd, []byte(c)) {
			return true
		}
	}
	return false
}

// CountSpoolCalls reads strace output written with -f -ttt -y and counts,
// per window, the system calls whose line names a path under spool (a
// path argument or a descriptor resolved by -y). Windows must not overlap.
// A call split into
// "<unfinished ...>" and "<... resumed>" lines counts once, at its start.
func CountSpoolCalls(r io.Reader, spool string, windows []Window) ([]SpoolCalls, error) {
	prefix := []byte(strings.TrimSuffix(spool, "/") + "/")
	exact := []byte(strings.TrimSuffix(spool, "/"))
	out := make([]SpoolCalls, len(windows))
	for i, w := range windows {
		out[i] = SpoolCalls{Phase: w.Name, Commands: w.Commands, BySyscall: map[string]int{}}
	}
	// Windows must not overlap; order sorts them by start.
	order := make([]int, len(windows))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return windows[order[a]].Start.Before(windows[order[b]].Start) })
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		call, err := parseTraceLine(sc.Bytes())
		if err != nil {
			return nil, err
		}
		if call.name == "" {
			continue
		}
		if !bytes.Contains(call.rest, prefix) && !containsPathEnd(call.rest, exact) {
			continue
		}
		// The last window starting at or before the call.
		k := sort.Search(len(order), func(k int) bool { return windows[order[k]].Start.After(call.at) }) - 1
		if k < 0 {
			continue
		}
		if i := order[k]; call.at.Before(windows[i].End) {
			out[i].Total++
			out[i].BySyscall[call.name]++
			if localOnly(call.name, call.rest) {
				out[i].Local++
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read strace output: %w", err)
	}
	return out, nil
}

// containsPathEnd finds the spool directory itself as a whole path: "<dir>"
// from -y or "\"dir\"" as an argument.
func containsPathEnd(line, dir []byte) bool {
	for _, pair := range [][2]byte{{'<', '>'}, {'"', '"'}} {
		needle := append(append([]byte{pair[0]}, dir...), pair[1])
		if bytes.Contains(line, needle) {
			return true
		}
	}
	return false
}

// traceCall is one parsed strace line.
type traceCall struct {
	pid  int
	at   time.Time
	name string // "" for lines that are not the start of a call
	rest []byte
}

// parseTraceLine reads "PID SECONDS.MICROS name(args...) = ret". Lines that
// resume a call, and exit or signal notes, have an empty name. A line
// without a pid and timestamp is an error.
func parseTraceLine(line []byte) (traceCall, error) {
	f1 := bytes.IndexByte(line, ' ')
	if f1 <= 0 {
		return traceCall{}, fmt.Errorf("strace line %q: no pid", trim(line))
	}
	pid, err := strconv.Atoi(string(line[:f1]))
	if err != nil {
		return traceCall{}, fmt.Errorf("strace line %q: pid: %w", trim(line), err)
	}
	rest := bytes.TrimLeft(line[f1:], " ")
	f2 := bytes.IndexByte(rest, ' ')
	if f2 <= 0 {
		return traceCall{}, fmt.Errorf("strace line %q: no timestamp", trim(line))
	}
	at, err := parseEpoch(rest[:f2])
	if err != nil {
		return traceCall{}, fmt.Errorf("strace line %q: %w", trim(line), err)
	}
	body := rest[f2+1:]
	c := traceCall{pid: pid, at: at, rest: body}
	if bytes.HasPrefix(body, []byte("<...")) || bytes.HasPrefix(body, []byte("+++")) || bytes.HasPrefix(body, []byte("---")) {
		return c, nil
	}
	open := bytes.IndexByte(body, '(')
	if open <= 0 {
		return c, nil
	}
	name := body[:open]
	for _, b := range name {
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_') {
			return c, nil
		}
	}
	c.name = string(name)
	return c, nil
}

// parseEpoch reads "1732550000.123456".
func parseEpoch(b []byte) (time.Time, error) {
	secs, frac, _ := bytes.Cut(b, []byte("."))
	s, err := strconv.ParseInt(string(secs), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %w", b, err)
	}
	var ns int64
	if len(frac) > 0 {
		if len(frac) > 9 {
			return time.Time{}, fmt.Errorf("timestamp %q: fraction too long", b)
		}
		n, err := strconv.ParseInt(string(frac), 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, fmt.Errorf("timestamp %q: fraction", b)
		}
		for i := len(frac); i < 9; i++ {
			n *= 10
		}
		ns = n
	}
	return time.Unix(s, ns), nil
}

func trim(b []byte) string {
	if len(b) > 120 {
		return string(b[:120]) + "..."
	}
	return string(b)
}

// TopSyscalls formats the most frequent system calls as "name×n, ...",
// at most k of them.
func TopSyscalls(m map[string]int, k int) string {
	type kv struct {
		name string
		n    int
	}
	var list []kv
	for n, c := range m {
		list = append(list, kv{n, c})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].n != list[j].n {
			return list[i].n > list[j].n
		}
		return list[i].name < list[j].name
	})
	var parts []string
	for i, e := range list {
		if i == k {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %d", e.name, e.n))
	}
	return strings.Join(parts, ", ")
}
