package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nfsimap.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestExampleIsTheDefaults(t *testing.T) {
	cfg, err := Load(writeFile(t, string(Example)), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := Marshal(cfg)
	b, _ := Marshal(DefaultConfig())
	if string(a) != string(b) {
		t.Errorf("example.yaml differs from DefaultConfig:\n%s\n---\n%s", a, b)
	}
}

func TestUnknownKeyNamed(t *testing.T) {
	_, err := Load(writeFile(t, "listen:\n  imap: \":1143\"\n  imapz: x\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "imapz") {
		t.Fatalf("want an error naming imapz, got %v", err)
	}
	_, err = Load(writeFile(t, "bogus_section: 1\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "bogus_section") {
		t.Fatalf("want an error naming bogus_section, got %v", err)
	}
}

func TestFileEnvFlags(t *testing.T) {
	path := writeFile(t, `
listen:
  imap: "127.0.0.1:1143"
timeouts:
  pre_auth: 20s
trusted_networks: [10.0.0.0/8]
log:
  level: debug
`)
	t.Setenv("NFSIMAP_TIMEOUTS_IDLE", "45m")
	t.Setenv("NFSIMAP_CLUSTER_SEEDS", "10.0.0.6:7946,10.0.0.7:7946")
	t.Setenv("NFSIMAP_LOG_LEVEL", "warn")
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.String("log.level", "", "")
	fs.String("listen.imaps", "", "")
	if err := fs.Parse([]string{"--log.level=error"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, fs)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.IMAP != "127.0.0.1:1143" || cfg.Timeouts.PreAuth != 20*time.Second {
		t.Errorf("file values not applied: %+v", cfg)
	}
	if cfg.Timeouts.Idle != 45*time.Minute || len(cfg.Cluster.Seeds) != 2 {
		t.Errorf("environment not applied: %v %v", cfg.Timeouts.Idle, cfg.Cluster.Seeds)
	}
	if cfg.Log.Level != "error" {
		t.Errorf("flag not applied: level %q", cfg.Log.Level)
	}
	if cfg.Listen.IMAPS != "" {
		t.Errorf("unset flag applied: %q", cfg.Listen.IMAPS)
	}
	if cfg.Timeouts.Command != 5*time.Minute || cfg.SpecialUse.Sent != "Sent" {
		t.Errorf("defaults lost: %+v", cfg)
	}
	if got := cfg.TrustedNetworks; len(got) != 1 || got[0] != "10.0.0.0/8" {
		t.Errorf("trusted networks %v", got)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateErrors(t *testing.T) {
	cases := map[string]func(*Config){
		"listen.imaps":           func(c *Config) { c.Listen.IMAPS = ":993" },
		"timeouts.idle":          func(c *Config) { c.Timeouts.Idle = time.Minute },
		"trusted_networks":       func(c *Config) { c.TrustedNetworks = []string{"nonsense"} },
		"log.level":              func(c *Config) { c.Log.Level = "loud" },
		"special_use.trash":      func(c *Config) { c.SpecialUse.Trash = "Sent" },
		"append_limit":           func(c *Config) { c.AppendLimit = 0 },
		"listen":                 func(c *Config) { c.Listen = Listen{} },
		"spool":                  func(c *Config) { c.Spool.Inbox = "relative/%u" },
		"tls":                    func(c *Config) { c.TLS.CertFile = "/x" },
		"limits.max_line_length": func(c *Config) { c.Limits.MaxLineLength = 10 },
		"cluster.seeds":          func(c *Config) { c.Cluster.Seeds = []string{"nohost"} },
	}
	for key, mod := range cases {
		c := DefaultConfig()
		mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: got %v", key, err)
		}
	}
}

func TestTrustedPrefixes(t *testing.T) {
	c := DefaultConfig()
	c.TrustedNetworks = []string{"192.0.2.7", "10.1.2.3/8"}
	ps, err := c.TrustedPrefixes()
	if err != nil {
		t.Fatal(err)
	}
	if ps[0].String() != "192.0.2.7/32" || ps[1].String() != "10.0.0.0/8" {
		t.Errorf("%v", ps)
	}
}

func TestMarshalHidesSecret(t *testing.T) {
	c := DefaultConfig()
	c.Cluster.Secret = "topsecret"
	out, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "topsecret") || !strings.Contains(string(out), "pre_auth: 1m0s") {
		t.Errorf("%s", out)
	}
}
