package cluster

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/nfsimap/nfsimap/node/auth"
	"github.com/nfsimap/nfsimap/node/front"
	"github.com/nfsimap/nfsimap/ring"
)

// startEntryFront runs a real client-facing front for node a, routing and
// proxying through cl; users it serves itself are counted in local.
func startEntryFront(t *testing.T, cl *Cluster, logs *logCapture) (addr string, local chan string) {
	t.Helper()
	local = make(chan string, 16)
	mem := map[string]*imapmemserver.User{}
	var memMu sync.Mutex
	fcfg := front.DefaultConfig()
	fcfg.Logger = slog.New(logs).With("node", "a")
	fcfg.Proxy = cl
	f, err := front.New(fcfg, users{}, cl, func(_ context.Context, u *auth.User, _ front.ConnInfo) (imapserver.Session, error) {
		local <- u.Name
		memMu.Lock()
		defer memMu.Unlock()
		mu := mem[u.Name]
		if mu == nil {
			mu = imapmemserver.NewUser(u.Name, "")
			mu.Create("INBOX", nil)
			mem[u.Name] = mu
		}
		return imapmemserver.NewUserSession(mu), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", ipA+":0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); f.ServeConn(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); f.Close(); wg.Wait() })
	return ln.Addr().String(), local
}

func TestEndToEndThroughFronts(t *testing.T) {
	r := &fixedRing{}
	b := startPeer(t, "b", ipB, r, testSecret, nil)
	aAddr := deadAddr(t, ipA)
	r.set(t, ring.Member{Name: "a", Addr: aAddr, State: ring.StateAlive}, ring.Member{Name: "b", Addr: b.addr, State: ring.StateAlive})
	user := userWithOrder(t, r.Snapshot(), "b", "a")
	localUser := userWithOrder(t, r.Snapshot(), "a", "b")
	aLogs := newLogCapture(t)
	a := newCluster(t, "a", aAddr, r, nil)
	addr, local := startEntryFront(t, a, aLogs)

	plainIR := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00pw"))
	for _, tc := range []struct {
		name  string
		login []string
	}{
		{"LOGIN", []string{"a1 LOGIN " + user + " pw"}},
		{"AUTHENTICATE PLAIN SASL-IR", []string{"x.2 AUTHENTICATE PLAIN " + plainIR}},
		{"AUTHENTICATE PLAIN", []string{"tag3 AUTHENTICATE PLAIN", plainIR}},
		{"AUTHENTICATE LOGIN", []string{"T4 AUTHENTICATE LOGIN", base64.StdEncoding.EncodeToString([]byte(user)), base64.StdEncoding.EncodeToString([]byte("pw"))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFrom(t, ipClient, addr)
			br := bufio.NewReader(c)
			if g, _ := br.ReadString('\n'); !strings.HasPrefix(g, "* OK") {
				t.Fatalf("greeting %q", g)
			}
			io.WriteString(c, "i ID (\"name\" \"E2E\")\r\n")
			readTo(t, br, "i")
			tag := strings.Fields(tc.login[0])[0]
			io.WriteString(c, tc.login[0]+"\r\n")
			for _, l := range tc.login[1:] {
				cont, err := br.ReadString('\n')
				if err != nil || !strings.HasPrefix(cont, "+") {
					t.Fatalf("continuation: %q, %v", cont, err)
				}
				io.WriteString(c, l+"\r\n")
			}
			got := readTo(t, br, tag)
			if !strings.HasPrefix(got, tag+" OK [CAPABILITY ") {
				t.Fatalf("login reply %q", got)
			}
			info := <-b.infos
			if info.Remote.String() != c.LocalAddr().String() || info.ClientID["name"] != "E2E" {
				t.Errorf("peer saw remote %v, ID %v", info.Remote, info.ClientID)
			}
			io.WriteString(c, "s SELECT INBOX\r\nz LOGOUT\r\n")
			if got := readTo(t, br, "s"); !strings.Contains(got, "s OK") {
				t.Errorf("SELECT: %q", got)
			}
			readTo(t, br, "z")
		})
	}
	if _, ok := b.logs.find("logged in", "remote="+ipClient+":"); !ok {
		t.Error("the serving node's log lacks the client's address")
	}

	// A user this node serves stays here.
	c := dialFrom(t, ipClient, addr)
	br := bufio.NewReader(c)
	br.ReadString('\n')
	io.WriteString(c, "a LOGIN "+localUser+" pw\r\n")
	if got := readTo(t, br, "a"); !strings.Contains(got, "a OK") {
		t.Fatalf("local login: %q", got)
	}
	select {
	case u := <-local:
		if u != localUser {
			t.Errorf("served %s here", u)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("local user not served here")
	}

	// Peer down: served here.
	r.set(t, ring.Member{Name: "a", Addr: aAddr, State: ring.StateAlive}, ring.Member{Name: "b", Addr: deadAddr(t, ipB), State: ring.StateAlive})
	c = dialFrom(t, ipClient, addr)
	br = bufio.NewReader(c)
	br.ReadString('\n')
	io.WriteString(c, "a LOGIN "+user+" pw\r\n")
	if got := readTo(t, br, "a"); !strings.Contains(got, "a OK") {
		t.Fatalf("login with the peer down: %q", got)
	}
	if u := <-local; u != user {
		t.Errorf("served %s here", u)
	}
}
