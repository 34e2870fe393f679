package bench

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrNoSocket is returned when no TCP socket matches.
var ErrNoSocket = errors.New("no such TCP socket")

// procRoot is where /proc is; tests point it elsewhere through Proc.
const procRoot = "/proc"

// Proc reads process and socket information from a proc file system.
// Root "" means /proc. Its methods may be called concurrently.
type Proc struct {
	Root string
}

func (p Proc) path(parts ...string) string {
	root := p.Root
	if root == "" {
		root = procRoot
	}
	return filepath.Join(append([]string{root}, parts...)...)
}

// tcpEntry is one line of /proc/net/tcp.
type tcpEntry struct {
	local, remote netip.AddrPort
	state         uint8
	inode         uint64
}

// tcpListen is the state number of a listening socket.
const tcpListen = 0x0A

// parseProcNetTCP parses the content of /proc/net/tcp (IPv4 only) and
// returns its entries. Lines it cannot read are an error.
func parseProcNetTCP(data []byte) ([]tcpEntry, error) {
	var out []tcpEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<20)
	first := true
	for sc.Scan() {
		if first {
			first = false // header
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 10 {
			return nil, fmt.Errorf("proc net tcp: short line %q", sc.Text())
		}
		local, err := parseHexAddr(f[1])
		if err != nil {
			return nil, err
		}
		remote, err := parseHexAddr(f[2])
		if err != nil {
			return nil, err
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("proc net tcp: state %q: %w", f[3], err)
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("proc net tcp: inode %q: %w", f[9], err)
		}
		out = append(out, tcpEntry{local: local, remote: remote, state: uint8(st), inode: inode})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("proc net tcp: %w", err)
	}
	return out, nil
}

// parseHexAddr reads "0100007F:0050" (address in host byte order as the
// kernel prints it on little-endian machines, port big-endian hex).
func parseHexAddr(s string) (netip.AddrPort, error) {
	ip, port, ok := strings.Cut(s, ":")
	if !ok || len(ip) != 8 {
		return netip.AddrPort{}, fmt.Errorf("proc net tcp: address %q", s)
	}
	b, err := hex.DecodeString(ip)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("proc net tcp: address %q: %w", s, err)
	}
	var a4 [4]byte
	binary.BigEndian.PutUint32(a4[:], binary.LittleEndian.Uint32(b))
	pn, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("proc net tcp: port %q: %w", s, err)
	}
	return netip.AddrPortFrom(netip.AddrFrom4(a4), uint16(pn)), nil
}

// socketInode finds the inode of the TCP socket with the given local and
// remote addresses; a zero remote matches a listening socket.
func (p Proc) socketInode(local, remote netip.AddrPort) (uint64, error) {
	data, err := os.ReadFile(p.path("net", "tcp"))
	if err != nil {
		return 0, fmt.Errorf("read proc net tcp: %w", err)
	}
	entries, err := parseProcNetTCP(data)
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		if e.local != local {
			continue
		}
		if !remote.IsValid() && e.state == tcpListen || remote.IsValid() && e.remote == remote {
			return e.inode, nil
		}
	}
	return 0, fmt.Errorf("%w: local %v remote %v", ErrNoSocket, local, remote)
}

// pids lists the numeric entries of /proc.
func (p Proc) pids() ([]int, error) {
	ents, err := os.ReadDir(p.path())
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out, nil
}

// socketOwners returns the processes holding a descriptor for the socket
// inode (processes that vanish meanwhile are skipped).
func (p Proc) socketOwners(inode uint64) ([]int, error) {
	pids, err := p.pids()
	if err != nil {
		return nil, err
	}
	want := "socket:[" + strconv.FormatUint(inode, 10) + "]"
	var out []int
	for _, pid := range pids {
		fdDir := p.path(strconv.Itoa(pid), "fd")
		ents, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if l, err := os.Readlink(filepath.Join(fdDir, e.Name())); err == nil && l == want {
				out = append(out, pid)
				break
			}
		}
	}
	return out, nil
}

// ServerPIDs returns the processes on this machine that hold the server
// side of the TCP connection from client to server (for Dovecot the imap
// process serving it, for nfsimap the node).
func (p Proc) ServerPIDs(client, server netip.AddrPort) ([]int, error) {
	inode, err := p.socketInode(server, client)
	if err != nil {
		return nil, err
	}
	pids, err := p.socketOwners(inode)
	if err != nil {
		return nil, err
	}
	if len(pids) == 0 {
		return nil, fmt.Errorf("%w: no process holds socket %d", ErrNoSocket, inode)
	}
	return pids, nil
}

// ListenerPIDs returns the processes holding the listening socket addr.
func (p Proc) ListenerPIDs(addr netip.AddrPort) ([]int, error) {
	inode, err := p.socketInode(addr, netip.AddrPort{})
	if err != nil {
		return nil, err
	}
	return p.socketOwners(inode)
}

// Stat is what the bench reads of one process.
type Stat struct {
	PID, PPID int
	Comm      string
}

// ParseStat reads /proc/PID/stat: "pid (comm) state ppid ...", where comm
// may itself hold spaces and parentheses.
func ParseStat(data []byte) (Stat, error) {
	open := bytes.IndexByte(data, '(')
	closing := bytes.LastIndexByte(data, ')')
	if open < 1 || closing < open {
		return Stat{}, fmt.Errorf("proc stat %q: no (comm)", data)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(data[:open])))
	if err != nil {
		return Stat{}, fmt.Errorf("proc stat pid: %w", err)
	}
	f := strings.Fields(string(data[closing+1:]))
	if len(f) < 2 {
		return Stat{}, fmt.Errorf("proc stat %q: short", data)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return Stat{}, fmt.Errorf("proc stat ppid: %w", err)
	}
	return Stat{PID: pid, PPID: ppid, Comm: string(data[open+1 : closing])}, nil
}

// Children returns the live direct children of pid, with their stat.
func (p Proc) Children(pid int) ([]Stat, error) {
	pids, err := p.pids()
	if err != nil {
		return nil, err
	}
	var out []Stat
	for _, c := range pids {
		data, err := os.ReadFile(p.path(strconv.Itoa(c), "stat"))
		if err != nil {
			continue
		}
		st, err := ParseStat(data)
		if err != nil {
			continue
		}
		if st.PPID == pid {
			out = append(out, st)
		}
	}
	return out, nil
}

// Memory is a process's resident memory in kB.
type Memory struct {
	RSS int64 // VmRSS: every resident page, shared ones included
	PSS int64 // proportional set size: shared pages divided among sharers
}

// Add sums two readings.
func (m Memory) Add(o Memory) Memory { return Memory{RSS: m.RSS + o.RSS, PSS: m.PSS + o.PSS} }

// Sub is m minus o.
func (m Memory) Sub(o Memory) Memory { return Memory{RSS: m.RSS - o.RSS, PSS: m.PSS - o.PSS} }

// ProcessMemory reads VmRSS from /proc/PID/status and Pss from
// /proc/PID/smaps_rollup (0 when the kernel lacks it).
func (p Proc) ProcessMemory(pid int) (Memory, error) {
	status, err := os.ReadFile(p.path(strconv.Itoa(pid), "status"))
	if err != nil {
		return Memory{}, fmt.Errorf("process %d: %w", pid, err)
	}
	var m Memory
	if m.RSS, err = procField(status, "VmRSS:"); err != nil {
		return Memory{}, fmt.Errorf("process %d: %w", pid, err)
	}
	if rollup, err := os.ReadFile(p.path(strconv.Itoa(pid), "smaps_rollup")); err == nil {
		if pss, err := procField(rollup, "Pss:"); err == nil {
			m.PSS = pss
		}
	}
	return m, nil
}

// procField reads "Name:   123 kB" from a proc file.
func procField(data []byte, name string) (int64, error) {
	for _, line := range bytes.Split(data, []byte("\n")) {
		if !bytes.HasPrefix(line, []byte(name)) {
			continue
		}
		f := strings.Fields(string(line[len(name):]))
		if len(f) == 0 {
			break
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s %q: %w", name, f[0], err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("no %s field", name)
}

// MemAvailable reads MemAvailable from /proc/meminfo in kB.
func (p Proc) MemAvailable() (int64, error) {
	data, err := os.ReadFile(p.path("meminfo"))
	if err != nil {
		return 0, fmt.Errorf("meminfo: %w", err)
	}
	return procField(data, "MemAvailable:")
}
