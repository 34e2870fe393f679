package session

import (
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	bad := []func(*Config){
		func(c *Config) { c.Layout.Inbox = "" },
		func(c *Config) { c.Layout.Inbox = "relative/%u" },
		func(c *Config) { c.PollInterval = -1 },
		func(c *Config) { c.SpoolTimeout = -1 },
		func(c *Config) { c.SpecialUse = map[string]imap.MailboxAttr{"Sent": "\\Outbox"} },
		func(c *Config) { c.SpecialUse = map[string]imap.MailboxAttr{"inbox": imap.MailboxAttrSent} },
	}
	for i, mod := range bad {
		c := DefaultConfig()
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("bad config %d validated", i)
		}
		if _, err := NewFactory(c, nil); err == nil {
			t.Errorf("NewFactory took bad config %d", i)
		}
	}
	c := DefaultConfig()
	c.SpecialUse = map[string]imap.MailboxAttr{"Junk": "\\JUNK"}
	f, err := NewFactory(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.cfg.SpecialUse["Junk"] != imap.MailboxAttrJunk {
		t.Errorf("attribute not canonical: %q", f.cfg.SpecialUse["Junk"])
	}
}
