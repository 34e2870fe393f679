package front

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestIdleConnectionCost measures the heap and goroutines of logged-in
// connections waiting for a command (server and test client together).
func TestIdleConnectionCost(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	env := startEnv(t, nil)
	const n = 300
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	conns := make([]net.Conn, 0, n)
	for i := range n {
		c, err := net.Dial("tcp", env.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		br := bufio.NewReaderSize(c, 256)
		fmt.Fprintf(c, "a LOGIN %s \"%s\"\r\nb SELECT INBOX\r\n", testUser, testPass)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("conn %d: %v", i, err)
			}
			if strings.HasPrefix(l, "b ") {
				break
			}
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	perConn := (int64(after.HeapInuse) - int64(before.HeapInuse)) / n
	goroutines := float64(runtime.NumGoroutine()-g0) / n
	t.Logf("%d idle logged-in connections: %d bytes of heap and %.1f goroutines each (server and client)", n, perConn, goroutines)
	if perConn > 96*1024 {
		t.Errorf("%d bytes per idle connection", perConn)
	}
	for _, c := range conns {
		c.Close()
	}
}
