package cluster

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestRelayByeAtResponseBoundary: a relay asked to stop in the middle of a
// response with a literal finishes that response and then says BYE, never
// inside the literal.
func TestRelayByeAtResponseBoundary(t *testing.T) {
	peerR, peerW := net.Pipe()
	clientW, clientR := net.Pipe()
	defer peerR.Close()
	defer peerW.Close()
	var stopping atomic.Bool
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := copyResponses(clientW, bufio.NewReader(peerR), peerR, &stopping)
		clientW.Close()
		done <- result{n, err}
	}()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(clientR)
		got <- b
	}()
	first := "* 1 FETCH (BODY[] {10}\r\n0123\r\n"
	rest := "5678)\r\n"
	if _, err := io.WriteString(peerW, first); err != nil {
		t.Fatal(err)
	}
	// What the relay's stop does: flag, and interrupt the read.
	stopping.Store(true)
	peerR.SetReadDeadline(time.Now())
	if _, err := io.WriteString(peerW, rest); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if !errors.Is(r.err, errStopped) {
			t.Fatalf("copyResponses: %v, want errStopped", r.err)
		}
		if r.n != int64(len(first)+len(rest)) {
			t.Errorf("copied %d bytes, want %d", r.n, len(first)+len(rest))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not stop")
	}
	if want := first + rest + byeLine; string(<-got) != want {
		t.Fatalf("client got a different stream, want %q", want)
	}
}

func TestLiteralSize(t *testing.T) {
	for _, tc := range []struct {
		line string
		want int64
	}{
		{"* 1 FETCH (BODY[] {10}\r\n", 10},
		{"* 1 FETCH (BODY[] {10+}\r\n", 10},
		{"* 1 FETCH (BODY[] {0}\r\n", 0},
		{"* OK done\r\n", 0},
		{"* OK {x}\r\n", 0},
		{"* OK {-3}\r\n", 0},
		{"}\r\n", 0},
		{"{99999999999999999999999}\r\n", 0},
	} {
		if got := literalSize([]byte(tc.line)); got != tc.want {
			t.Errorf("literalSize(%q) = %d, want %d", tc.line, got, tc.want)
		}
	}
}

func FuzzLiteralSize(f *testing.F) {
	f.Add([]byte("* 1 FETCH (BODY[] {10}\r\n"))
	f.Add([]byte("{5+}\n"))
	f.Add([]byte("}{"))
	f.Fuzz(func(t *testing.T, line []byte) {
		if n := literalSize(line); n < 0 {
			t.Fatalf("negative literal size %d", n)
		}
	})
}
