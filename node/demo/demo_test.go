package demo

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/nfsimap/nfsimap/node/auth"
	"github.com/nfsimap/nfsimap/node/config"
)

func TestSetup(t *testing.T) {
	dir := t.TempDir()
	path, err := Setup(dir, "127.0.0.1:1143")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := auth.NewPasswdFile(auth.Config{Path: cfg.Auth.PasswdFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pw.Authenticate(context.Background(), User, Password); err != nil {
		t.Fatalf("demo login: %v", err)
	}
	count := func() (n int) {
		for _, d := range []string{"new", "cur", ".Archive/new", ".Archive/cur"} {
			entries, _ := os.ReadDir(filepath.Join(dir, "spool", User, "Maildir", d))
			n += len(entries)
		}
		return n
	}
	if n := count(); n != len(samples) {
		t.Fatalf("%d demo messages, want %d", n, len(samples))
	}
	// A second run keeps the spool as it is.
	if _, err := Setup(dir, "127.0.0.1:1143"); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != len(samples) {
		t.Fatalf("%d demo messages after a second setup, want %d", n, len(samples))
	}
}
