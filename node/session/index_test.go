package session

import (
	"log/slog"
	"testing"

	"github.com/nfsimap/nfsimap/localindex"
)

// openTestIndex opens a local index in dir for a test.
func openTestIndex(t testing.TB, dir string) *localindex.Index {
	t.Helper()
	cfg := localindex.DefaultConfig()
	cfg.Dir = dir
	x, err := localindex.Open(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open local index: %v", err)
	}
	return x
}
