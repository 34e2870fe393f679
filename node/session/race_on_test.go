//go:build race

package session

// raceEnabled: the race detector slows the spool-heavy tests down about
// tenfold; they use smaller mailboxes then.
const raceEnabled = true
