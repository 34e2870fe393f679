// Package bench compares nfsimap with Dovecot on this machine: the same
// deterministic spool (internal/corpus), a fresh copy for each server, the
// same loadtest profiles, logins per second, resident memory per idle
// connection, SORT/THREAD latency on a large mailbox and the spool
// operations (system calls on spool paths, counted with strace) each
// server spends on a fixed sequence of commands.
//
// The comparison is TestCompare; it runs only when NFSIMAP_BENCH is
// "quick" or "full", so `go test ./...` stays fast:
//
//	NFSIMAP_BENCH=quick go test -run TestCompare -v -timeout 10m ./internal/bench
//	NFSIMAP_BENCH=full  go test -run TestCompare -v -timeout 15m ./internal/bench
//
// The report is printed to standard output. NFSIMAP_BENCH_OUT=FILE also
// writes the markdown to FILE and the JSON beside it (report.md gives
// report.json); a FILE ending in .json gets the JSON and the markdown goes
// beside it. It needs root (Dovecot
// runs its mail processes as a separate user, strace attaches to the
// servers), dovecot-imapd and strace (.ci/deps installs both); .ci/bench
// installs them when missing and runs the test.
//
// Each server runs alone: Dovecot first on a copy of the generated spool,
// then nfsimap on the spool itself. Per server, in order: a warm-up SELECT
// of every user's INBOX, the idle connections, the spool operation count,
// SORT/THREAD, logins per second, and last loadtest, the only part that
// changes the users' mailboxes.
//
// The rest of the package is the driver's parts: a minimal IMAP client
// that reads raw responses, process lookups in /proc (which process serves
// a socket, its resident memory), an strace output counter and the report
// tables.
package bench
