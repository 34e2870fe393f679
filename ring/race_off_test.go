//go:build !race

package ring

// raceEnabled is true when the tests run under the race detector, which
// makes hashing-heavy tests many times slower.
const raceEnabled = false
