package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/nfsimap/nfsimap/internal/testcert"
	"github.com/nfsimap/nfsimap/node/auth"
	"github.com/nfsimap/nfsimap/node/front"
)

type oneUser struct{}

func (oneUser) Authenticate(_ context.Context, u, p string) (*auth.User, error) {
	if u == "bob" && p == "pw" {
		return &auth.User{Name: u}, nil
	}
	return nil, auth.ErrBadCredentials
}
func (oneUser) Lookup(context.Context, string) (*auth.User, error) { return nil, auth.ErrUnknownUser }

func TestListenersReloadShutdown(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := testcert.WriteDir(t, dir, "first", "127.0.0.1")
	certs, err := LoadCertStore(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	user := imapmemserver.NewUser("bob", "pw")
	user.Create("INBOX", nil)
	fcfg := front.DefaultConfig()
	fcfg.TLSConfig = certs.TLSConfig()
	fcfg.Logger = slog.New(slog.DiscardHandler)
	f, err := front.New(fcfg, oneUser{}, nil, func(context.Context, *auth.User, front.ConnInfo) (imapserver.Session, error) {
		return imapmemserver.NewUserSession(user), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{IMAPAddr: "127.0.0.1:0", IMAPSAddr: "127.0.0.1:0", TLS: certs.TLSConfig()}, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	imapAddr, imapsAddr := srv.Addrs()

	// IMAPS and STARTTLS logins.
	c1, err := imapclient.DialTLS(imapsAddr.String(), &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	if err := c1.Login("bob", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	c2, err := imapclient.DialStartTLS(imapAddr.String(), &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Login("bob", "pw").Wait(); err != nil {
		t.Fatal(err)
	}

	// Reload the certificate.
	if cn := testcert.PeerCN(t, imapsAddr.String()); cn != "first" {
		t.Fatalf("certificate %q", cn)
	}
	testcert.WriteDir(t, dir, "second", "127.0.0.1")
	if err := certs.Reload(); err != nil {
		t.Fatal(err)
	}
	if cn := testcert.PeerCN(t, imapsAddr.String()); cn != "second" {
		t.Fatalf("certificate after reload %q", cn)
	}
	os.WriteFile(certFile, []byte("garbage"), 0o600)
	if err := certs.Reload(); err == nil {
		t.Fatal("reload of a broken certificate succeeded")
	}
	if cn := testcert.PeerCN(t, imapsAddr.String()); cn != "second" {
		t.Fatalf("certificate after failed reload %q", cn)
	}

	// Shutdown: a plain client waiting for a command gets BYE.
	raw, err := net.Dial("tcp", imapAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	br := bufio.NewReader(raw)
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if l, _ := br.ReadString('\n'); !strings.HasPrefix(l, "* OK") {
		t.Fatalf("greeting %q", l)
	}
	raw.Write([]byte("a LOGIN bob pw\r\n"))
	if l, _ := br.ReadString('\n'); !strings.HasPrefix(l, "a OK") {
		t.Fatalf("login %q", l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if l, _ := br.ReadString('\n'); !strings.HasPrefix(l, "* BYE [UNAVAILABLE]") {
		t.Fatalf("after shutdown %q", l)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", imapAddr.String()); err == nil {
		t.Error("still accepting after shutdown")
	}
}
