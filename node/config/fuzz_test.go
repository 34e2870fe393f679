package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds random files to Load and Validate: errors, never panics.
func FuzzLoad(f *testing.F) {
	f.Add(Example)
	f.Add([]byte("listen:\n  imap: 1\ntimeouts:\n  idle: forever\n"))
	f.Add([]byte("trusted_networks: 10.0.0.0/8\nappend_limit: -1\n"))
	f.Add([]byte("cluster: [1, 2]\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(p, nil)
		if err != nil {
			return
		}
		if cfg.Validate() == nil {
			if _, err := Marshal(cfg); err != nil {
				t.Fatalf("valid config does not marshal: %v", err)
			}
		}
	})
}
