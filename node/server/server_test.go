package server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

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

// writeCert writes a fresh self-signed certificate with the given common
// name to dir and returns the file names.
func writeCert(t *testing.T, dir, cn string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func peerCN(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestListenersReloadShutdown(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, "first")
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
	if cn := peerCN(t, imapsAddr.String()); cn != "first" {
		t.Fatalf("certificate %q", cn)
	}
	writeCert(t, dir, "second")
	if err := certs.Reload(); err != nil {
		t.Fatal(err)
	}
	if cn := peerCN(t, imapsAddr.String()); cn != "second" {
		t.Fatalf("certificate after reload %q", cn)
	}
	os.WriteFile(certFile, []byte("garbage"), 0o600)
	if err := certs.Reload(); err == nil {
		t.Fatal("reload of a broken certificate succeeded")
	}
	if cn := peerCN(t, imapsAddr.String()); cn != "second" {
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
