package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Node metadata travels in memberlist's per-node meta field (at most
// memberlist.MetaMaxSize = 512 bytes). Layout, version 1:
//
//	byte    format version (1)
//	byte    state (1 alive, 2 draining)
//	uvarint length, then that many bytes: internal IMAP address
//	uvarint length, then that many bytes: software version
//
// Bytes after these fields are ignored, so a later release may append
// fields without changing the version byte. A different version byte means
// a layout this release cannot read: the member is left out of the ring.
const metaVersion1 = 1

// maxMetaSize is memberlist's limit on node metadata.
const maxMetaSize = 512

// ErrBadMeta is wrapped by every metadata decoding error.
var ErrBadMeta = errors.New("ring: bad node metadata")

// nodeMeta is what a node tells the others about itself.
type nodeMeta struct {
	State   State
	Addr    string
	Version string
}

// encode returns the metadata bytes, or an error when they would not fit.
func (m nodeMeta) encode() ([]byte, error) {
	b := make([]byte, 0, 2+2*binary.MaxVarintLen16+len(m.Addr)+len(m.Version))
	b = append(b, metaVersion1, byte(m.State))
	b = binary.AppendUvarint(b, uint64(len(m.Addr)))
	b = append(b, m.Addr...)
	b = binary.AppendUvarint(b, uint64(len(m.Version)))
	b = append(b, m.Version...)
	if len(b) > maxMetaSize {
		return nil, fmt.Errorf("ring: node metadata is %d bytes, more than %d", len(b), maxMetaSize)
	}
	return b, nil
}

// decodeMeta parses metadata received from a peer. It never panics.
func decodeMeta(b []byte) (nodeMeta, error) {
	var m nodeMeta
	if len(b) < 2 {
		return m, fmt.Errorf("%w: %d bytes", ErrBadMeta, len(b))
	}
	if b[0] != metaVersion1 {
		return m, fmt.Errorf("%w: unknown format version %d", ErrBadMeta, b[0])
	}
	m.State = State(b[1])
	if !m.State.Valid() {
		return m, fmt.Errorf("%w: unknown state %d", ErrBadMeta, b[1])
	}
	rest := b[2:]
	var err error
	if m.Addr, rest, err = metaString(rest, "address"); err != nil {
		return m, err
	}
	if m.Version, _, err = metaString(rest, "version"); err != nil {
		return m, err
	}
	if m.Addr == "" {
		return m, fmt.Errorf("%w: empty address", ErrBadMeta)
	}
	return m, nil
}

func metaString(b []byte, what string) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return "", nil, fmt.Errorf("%w: bad %s length", ErrBadMeta, what)
	}
	b = b[k:]
	if n > uint64(len(b)) {
		return "", nil, fmt.Errorf("%w: %s length %d past the end", ErrBadMeta, what, n)
	}
	return string(b[:n]), b[n:], nil
}
