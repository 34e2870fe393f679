package auth_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/nfsimap/nfsimap/node/auth"
)

func ExampleHash() {
	// What `nfsimap pw -s SHA512-CRYPT` prints (nil: salts from crypto/rand).
	h, err := auth.Hash("SHA512-CRYPT", "secret", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	ok, err := auth.Verify(h, "secret", "", auth.Limits{})
	fmt.Println(h[:17], ok, err)
	// Output: {SHA512-CRYPT}$6$ true <nil>
}

func ExamplePasswdFile() {
	dir, err := os.MkdirTemp("", "passwd")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "passwd")
	line := "alice:{PLAIN}secret:1000:1000::/home/alice::userdb_mail=maildir:/var/mail/alice\n"
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		fmt.Println(err)
		return
	}
	cfg := auth.DefaultConfig()
	cfg.Path = path
	a, err := auth.NewPasswdFile(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println(err)
		return
	}
	u, err := a.Authenticate(context.Background(), "Alice", "secret")
	fmt.Println(u.Name, u.Home, u.Mail, err)
	// Output: alice /home/alice maildir:/var/mail/alice <nil>
}
