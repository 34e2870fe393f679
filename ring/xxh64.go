package ring

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// sum64Pair returns XXH64 (seed 0) of the bytes of a followed by the
// bytes of user, without building the concatenation. It computes exactly
// what xxhash.Sum64(append(a, user...)) computes (the tests check this for
// every split of many inputs): the ring hashes node+separator as a and the
// user name as user, and copying them together before hashing costs more than the
// hash (the fresh copy stalls the loads that follow).
//
// The algorithm is xxHash's XXH64 as specified in its documentation
// (doc/xxhash_spec.md in the xxHash repository).
//
// It reads only memory that nobody writes (snapshot keys, strings), so it
// is left out of the race detector's instrumentation, which would make it
// some ten times slower in test runs.
//
//go:norace
func sum64Pair(a []byte, user string) uint64 {
	// A read-only view of the string's bytes, without a copy.
	b := unsafe.Slice(unsafe.StringData(user), len(user))
	n := len(a) + len(b)
	i := 0 // position in the virtual input a||b
	var h uint64
	if n >= 32 {
		p1, p2 := prime1, prime2 // variables: the sums wrap around
		v1 := p1 + p2
		v2 := p2
		v3 := uint64(0)
		v4 := -p1
		for ; i+32 <= n; i += 32 {
			v1 = xxRound(v1, load64(a, b, i))
			v2 = xxRound(v2, load64(a, b, i+8))
			v3 = xxRound(v3, load64(a, b, i+16))
			v4 = xxRound(v4, load64(a, b, i+24))
		}
		h = bits.RotateLeft64(v1, 1) + bits.RotateLeft64(v2, 7) + bits.RotateLeft64(v3, 12) + bits.RotateLeft64(v4, 18)
		h = xxMergeRound(h, v1)
		h = xxMergeRound(h, v2)
		h = xxMergeRound(h, v3)
		h = xxMergeRound(h, v4)
	} else {
		h = prime5
	}
	h += uint64(n)
	for ; i+8 <= n; i += 8 {
		h ^= xxRound(0, load64(a, b, i))
		h = bits.RotateLeft64(h, 27)*prime1 + prime4
	}
	if i+4 <= n {
		h ^= uint64(load32(a, b, i)) * prime1
		h = bits.RotateLeft64(h, 23)*prime2 + prime3
		i += 4
	}
	for ; i < n; i++ {
		h ^= uint64(byteAt(a, b, i)) * prime5
		h = bits.RotateLeft64(h, 11) * prime1
	}
	h ^= h >> 33
	h *= prime2
	h ^= h >> 29
	h *= prime3
	h ^= h >> 32
	return h
}

const (
	prime1 uint64 = 0x9E3779B185EBCA87
	prime2 uint64 = 0xC2B2AE3D27D4EB4F
	prime3 uint64 = 0x165667B19E3779F9
	prime4 uint64 = 0x85EBCA77C2B2AE63
	prime5 uint64 = 0x27D4EB2F165667C5
)

func xxRound(acc, input uint64) uint64 {
	acc += input * prime2
	acc = bits.RotateLeft64(acc, 31)
	return acc * prime1
}

func xxMergeRound(acc, val uint64) uint64 {
	acc ^= xxRound(0, val)
	return acc*prime1 + prime4
}

// load64 reads 8 little-endian bytes at position i of a||b.
func load64(a, b []byte, i int) uint64 {
	if i+8 <= len(a) {
		return binary.LittleEndian.Uint64(a[i:])
	}
	if i >= len(a) {
		return binary.LittleEndian.Uint64(b[i-len(a):])
	}
	if r := len(a) - i; len(a) >= 8 && len(b) >= 8 {
		// r bytes from the end of a, 8-r from the start of b: two loads.
		lo := binary.LittleEndian.Uint64(a[len(a)-8:]) >> (8 * (8 - r))
		hi := binary.LittleEndian.Uint64(b) << (8 * r)
		return lo | hi
	}
	return straddle(a, b, i, 8)
}

// load32 reads 4 little-endian bytes at position i of a||b.
func load32(a, b []byte, i int) uint32 {
	if i+4 <= len(a) {
		return binary.LittleEndian.Uint32(a[i:])
	}
	if i >= len(a) {
		return binary.LittleEndian.Uint32(b[i-len(a):])
	}
	return uint32(straddle(a, b, i, 4))
}

// straddle reads n little-endian bytes at position i of a||b, where they
// are partly in a and partly in b.
func straddle(a, b []byte, i, n int) uint64 {
	var v uint64
	for k := range n {
		v |= uint64(byteAt(a, b, i+k)) << (8 * k)
	}
	return v
}

func byteAt(a, b []byte, i int) byte {
	if i < len(a) {
		return a[i]
	}
	return b[i-len(a)]
}
