package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// DovecotMasterPID reads base_dir from a dovecot.conf and the master's
// pid from base_dir/master.pid.
func DovecotMasterPID(confPath string) (int, error) {
	data, err := os.ReadFile(confPath)
	if err != nil {
		return 0, fmt.Errorf("dovecot config: %w", err)
	}
	base := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(k) == "base_dir" {
			base = strings.TrimSpace(v)
		}
	}
	if base == "" {
		return 0, fmt.Errorf("dovecot config %s: no base_dir", confPath)
	}
	pidData, err := os.ReadFile(filepath.Join(base, "master.pid"))
	if err != nil {
		return 0, fmt.Errorf("dovecot master pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidData)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("dovecot master pid %q: bad", pidData)
	}
	return pid, nil
}

// Tree returns pid and its direct children (Dovecot's master forks every
// service process itself).
func (p Proc) Tree(pid int) ([]Stat, error) {
	data, err := os.ReadFile(p.path(strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	self, err := ParseStat(data)
	if err != nil {
		return nil, err
	}
	kids, err := p.Children(pid)
	if err != nil {
		return nil, err
	}
	return append([]Stat{self}, kids...), nil
}

// CountComm counts the live children of pid named comm.
func (p Proc) CountComm(pid int, comm string) (int, error) {
	kids, err := p.Children(pid)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range kids {
		if k.Comm == comm {
			n++
		}
	}
	return n, nil
}

// ListenerProcess returns the single process listening on addr (nfsimap).
func (p Proc) ListenerProcess(addr string) (Stat, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return Stat{}, fmt.Errorf("listener %q: %w", addr, err)
	}
	pids, err := p.ListenerPIDs(ap)
	if err != nil {
		return Stat{}, err
	}
	if len(pids) != 1 {
		return Stat{}, fmt.Errorf("listener %s: %d processes hold it (%v), want 1", addr, len(pids), pids)
	}
	data, err := os.ReadFile(p.path(strconv.Itoa(pids[0]), "stat"))
	if err != nil {
		return Stat{}, fmt.Errorf("process %d: %w", pids[0], err)
	}
	return ParseStat(data)
}

// RaiseFileLimit sets this process's RLIMIT_NOFILE (soft and, when
// allowed, hard) to at least n and returns the soft limit now in force,
// with an error when that is below n. Processes started afterwards
// inherit it.
func RaiseFileLimit(n uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur >= n {
		return lim.Cur, nil
	}
	want := lim
	want.Cur = n
	if want.Max < n {
		want.Max = n
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		// Without privilege only the soft limit may rise, up to the hard.
		want = lim
		want.Cur = lim.Max
		if err2 := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err2 != nil {
			return lim.Cur, fmt.Errorf("setrlimit: %w", err)
		}
	}
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur < n {
		return lim.Cur, fmt.Errorf("RLIMIT_NOFILE stays at %d, below %d (raising the hard limit needs CAP_SYS_RESOURCE)", lim.Cur, n)
	}
	return lim.Cur, nil
}
