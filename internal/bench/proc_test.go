package bench

import (
	"net"
	"net/netip"
	"os"
	"testing"
)

func TestParseProcNetTCP(t *testing.T) {
	data := []byte(`  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0B2F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0B2F 0200007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 67890 1 0000000000000000 20 4 30 10 -1
`)
	entries, err := parseProcNetTCP(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("%d entries", len(entries))
	}
	want := netip.MustParseAddrPort("127.0.0.1:2863")
	if entries[0].local != want || entries[0].state != tcpListen || entries[0].inode != 12345 {
		t.Errorf("entry 0: %+v", entries[0])
	}
	if entries[1].remote != netip.MustParseAddrPort("127.0.0.2:54321") || entries[1].inode != 67890 {
		t.Errorf("entry 1: %+v", entries[1])
	}
	if _, err := parseProcNetTCP([]byte("head\n 0: zz:0B2F 00000000:0000 0A a b c d e 1\n")); err == nil {
		t.Error("bad address accepted")
	}
}

func FuzzParseProcNetTCP(f *testing.F) {
	f.Add([]byte("h\n   0: 0100007F:0B2F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1\n"))
	f.Add([]byte("h\n1: 0100007F 0 0 0 0 0 0 0 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = parseProcNetTCP(data)
	})
}

func TestParseStat(t *testing.T) {
	st, err := ParseStat([]byte("4242 (imap (x) y) S 17 4242 4242 0 -1 4194560 0 0 0"))
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != 4242 || st.PPID != 17 || st.Comm != "imap (x) y" {
		t.Errorf("%+v", st)
	}
	for _, bad := range []string{"", "12 imap S 1", "x (a) S 1", "12 (a) S"} {
		if _, err := ParseStat([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("4242 (imap) S 17 4242"))
	f.Add([]byte("1 ((() S 0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseStat(data)
	})
}

// The test process itself is the server here: the socket of an accepted
// connection must lead back to its own pid.
func TestServerPIDsOfOwnSocket(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	c, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if s := <-accepted; s != nil {
		defer s.Close()
	}
	p := Proc{}
	client := netip.MustParseAddrPort(c.LocalAddr().String())
	server := netip.MustParseAddrPort(c.RemoteAddr().String())
	pids, err := p.ServerPIDs(client, server)
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != 1 || pids[0] != os.Getpid() {
		t.Errorf("server pids %v, want [%d]", pids, os.Getpid())
	}
	st, err := p.ListenerProcess(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != os.Getpid() {
		t.Errorf("listener pid %d, want %d", st.PID, os.Getpid())
	}
	if _, err := p.ServerPIDs(server, client); err == nil {
		// The reverse direction is the client's own socket, also ours;
		// a port nobody uses must fail.
		if _, err := p.ServerPIDs(netip.MustParseAddrPort("127.0.0.1:1"), server); err == nil {
			t.Error("a socket that does not exist was found")
		}
	}
	m, err := p.ProcessMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 {
		t.Errorf("own RSS %d KiB", m.RSS)
	}
	tree, err := p.Tree(os.Getpid())
	if err != nil || len(tree) == 0 || tree[0].PID != os.Getpid() {
		t.Errorf("tree %v, %v", tree, err)
	}
	if avail, err := p.MemAvailable(); err != nil || avail <= 0 {
		t.Errorf("MemAvailable %d, %v", avail, err)
	}
}

func TestRaiseFileLimit(t *testing.T) {
	cur, err := RaiseFileLimit(64)
	if err != nil || cur < 64 {
		t.Fatalf("RaiseFileLimit(64) = %d, %v", cur, err)
	}
	// Far above any hard limit: either raised (privileged) or an error
	// naming the limit in force.
	if cur, err := RaiseFileLimit(1 << 40); err == nil && cur < 1<<40 {
		t.Errorf("RaiseFileLimit(1<<40) = %d without an error", cur)
	}
}
