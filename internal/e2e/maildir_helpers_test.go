package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// deliverLikeMTA writes a message the way procmail or an MTA does: into
// tmp/, then a rename into new/ under the MTA's own unique name.
func deliverLikeMTA(t *testing.T, maildir, name, text string) {
	t.Helper()
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(maildir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(maildir, "tmp", name)
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(maildir, "new", name)); err != nil {
		t.Fatal(err)
	}
}
