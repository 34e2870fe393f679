package ring

import (
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// sum64Pair must equal xxHash over the concatenation for every split.
func TestSum64PairMatchesXXHash(t *testing.T) {
	var all []byte
	for i := range 200 {
		all = append(all, byte(i*131+7))
	}
	for n := 0; n <= len(all); n++ {
		in := all[:n]
		want := xxhash.Sum64(in)
		for k := 0; k <= n; k++ {
			if got := sum64Pair(in[:k], string(in[k:])); got != want {
				t.Fatalf("length %d split at %d: %#x, want %#x", n, k, got, want)
			}
		}
	}
	// Known XXH64 values (seed 0), from the C library.
	for in, want := range map[string]uint64{"": 0xef46db3751d8e999, "a": 0xd24ec4f1a98c6e5b, "abc": 0x44bc2cf5ad770999} {
		if got := sum64Pair(nil, in); got != want {
			t.Errorf("XXH64(%q) = %#x, want %#x", in, got, want)
		}
	}
}

func FuzzSum64Pair(f *testing.F) {
	f.Add([]byte("imap01\x00"), "alice")
	f.Add([]byte(strings.Repeat("n", 40)), strings.Repeat("u", 33))
	f.Fuzz(func(t *testing.T, a []byte, b string) {
		want := xxhash.Sum64(append(append([]byte(nil), a...), b...))
		if got := sum64Pair(a, b); got != want {
			t.Fatalf("sum64Pair(%q, %q) = %#x, want %#x", a, b, got, want)
		}
	})
}
