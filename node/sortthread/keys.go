package sortthread

import "sync"

// Keys remembers the sort keys computed from header values, so that a
// mailbox sorted again (a webmail sorts on every page view) does not
// decode, casemap and strip each Subject or address anew. A Keys is safe
// for concurrent use; its size is bounded (it starts over when full). The
// zero value is not ready: use NewKeys.
type Keys struct {
	mu  sync.Mutex
	m   map[keyID]keyEntry
	max int // entries kept at most
}

type keyKind uint8

const (
	kindSubject keyKind = iota
	kindAddress
	kindDisplay
)

type keyID struct {
	kind keyKind
	raw  string
}

type keyEntry struct {
	key string
	rf  bool // subjects: the subject was a reply or forward
}

// maxKeys bounds a Keys: about 20 MB at 100-byte values, for mailboxes of
// up to that many distinct values; a larger mailbox is sorted without
// remembered keys once the cache overflows.
const maxKeys = 1 << 17

// NewKeys returns an empty key cache.
func NewKeys() *Keys { return &Keys{m: make(map[keyID]keyEntry), max: maxKeys} }

// lookupLocked returns the key of raw for kind, computing it with f when it is
// not known. k may be nil (nothing remembered). k.mu must be held.
func (k *Keys) lookupLocked(kind keyKind, raw string, f func(string) keyEntry) keyEntry {
	if k == nil {
		return f(raw)
	}
	id := keyID{kind, raw}
	if e, ok := k.m[id]; ok {
		return e
	}
	e := f(raw)
	if len(k.m) >= k.max {
		clear(k.m)
	}
	k.m[id] = e
	return e
}

func (k *Keys) lock() {
	if k != nil {
		k.mu.Lock()
	}
}

func (k *Keys) unlock() {
	if k != nil {
		k.mu.Unlock()
	}
}

func subjectEntry(raw string) keyEntry {
	key, rf := subjectKey(raw)
	return keyEntry{key, rf}
}

func addressEntry(raw string) keyEntry { return keyEntry{key: addressKey(raw)} }
func displayEntry(raw string) keyEntry { return keyEntry{key: displayKey(raw)} }
