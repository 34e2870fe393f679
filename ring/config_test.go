package ring

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func validConfig() Config {
	c := DefaultConfig()
	c.NodeName = "imap01"
	c.InternalAddr = "10.0.0.1:1143"
	return c
}

func TestConfigValidate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if err := DefaultConfig().Validate(); !errors.Is(err, ErrConfig) {
		t.Errorf("default config without internal address: %v", err)
	}
	key16 := base64.StdEncoding.EncodeToString(make([]byte, 16))
	key32 := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"key16", func(c *Config) { c.SecretKey = key16 }, true},
		{"key32", func(c *Config) { c.SecretKey = key32 }, true},
		{"key20", func(c *Config) { c.SecretKey = base64.StdEncoding.EncodeToString(make([]byte, 20)) }, false},
		{"key not base64", func(c *Config) { c.SecretKey = "not base64!" }, false},
		{"no name", func(c *Config) { c.NodeName = "" }, false},
		{"addr without port", func(c *Config) { c.InternalAddr = "10.0.0.1" }, false},
		{"addr too long", func(c *Config) { c.InternalAddr = strings.Repeat("h", 600) + ":1" }, false},
		{"bind not ip", func(c *Config) { c.BindAddr = "localhost" }, false},
		{"bind empty", func(c *Config) { c.BindAddr = "" }, true},
		{"port range", func(c *Config) { c.BindPort = 70000 }, false},
		{"advertise not ip", func(c *Config) { c.AdvertiseAddr = "x" }, false},
		{"empty seed", func(c *Config) { c.Seeds = []string{""} }, false},
		{"profile", func(c *Config) { c.Profile = "wan" }, false},
		{"local profile", func(c *Config) { c.Profile = ProfileLocal }, true},
		{"label", func(c *Config) { c.ClusterLabel = strings.Repeat("l", 256) }, false},
		{"negative", func(c *Config) { c.RejoinInterval = -1 }, false},
	} {
		c := validConfig()
		tc.mod(&c)
		err := c.Validate()
		if tc.ok && err != nil {
			t.Errorf("%s: unexpected error %v", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", tc.name, err)
		}
	}
}
