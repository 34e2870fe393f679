package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// verifyCache remembers recent successful logins so that a client that
// reconnects every few minutes does not pay for bcrypt or Argon2 each
// time (Dovecot's auth_cache plays the same part). It stores, per user, an
// HMAC-SHA256 of the password under a per-process random key, bound to the
// parsed stored password: a changed or reloaded entry does not match. Safe
// for concurrent use.
type verifyCache struct {
	ttl  time.Duration
	size int
	key  [32]byte
	// mu guards entries.
	mu      sync.Mutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	pw      *Password
	mac     [sha256.Size]byte
	expires time.Time
}

func newVerifyCache(ttl time.Duration, size int) *verifyCache {
	c := &verifyCache{ttl: ttl, size: size, entries: make(map[string]cacheEntry)}
	if _, err := rand.Read(c.key[:]); err != nil {
		panic("auth: crypto/rand failed: " + err.Error()) // crypto/rand does not fail on Linux
	}
	return c
}

func (c *verifyCache) mac(user, password string) (m [sha256.Size]byte) {
	h := hmac.New(sha256.New, c.key[:])
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(password))
	h.Sum(m[:0])
	return m
}

// hit reports whether user logged in with password against pw within ttl.
func (c *verifyCache) hit(user, password string, pw *Password, now time.Time) bool {
	c.mu.Lock()
	e, ok := c.entries[user]
	c.mu.Unlock()
	if !ok || e.pw != pw || now.After(e.expires) {
		return false
	}
	m := c.mac(user, password)
	return hmac.Equal(m[:], e.mac[:])
}

// add records a successful login. When the cache is full, expired entries
// are dropped, and if that is not enough, arbitrary ones.
func (c *verifyCache) add(user, password string, pw *Password, now time.Time) {
	e := cacheEntry{pw: pw, mac: c.mac(user, password), expires: now.Add(c.ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[user]; !ok && len(c.entries) >= c.size {
		c.evictLocked(now)
	}
	c.entries[user] = e
}

func (c *verifyCache) evictLocked(now time.Time) {
	for k, e := range c.entries {
		if now.After(e.expires) {
			delete(c.entries, k)
		}
	}
	for k := range c.entries {
		if len(c.entries) < c.size {
			break
		}
		delete(c.entries, k)
	}
}
