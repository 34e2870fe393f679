// Command nfsimap is the IMAP server node for maildir spools on NFS.
//
//	nfsimap serve -c FILE [--key=value ...]   run a node
//	nfsimap config check -c FILE             validate a file, print the effective config
//	nfsimap config example                   print the commented example config
//	nfsimap pw [-s SCHEME] [-p PASSWORD]      hash a password for the passwd-file
//	nfsimap demo [--dir DIR]                 set up a demo spool and user, and serve it
//	nfsimap version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/nfsimap/nfsimap/node/admin"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, sigs))
}

const usage = `usage:
  nfsimap serve -c FILE [--key=value ...]   run a node (keys as in the config file, e.g. --listen.imap=:1143)
  nfsimap config check -c FILE             validate a config file and print the effective configuration
  nfsimap config example                   print the commented example configuration
  nfsimap pw [-s SCHEME] [-p PASSWORD]      hash a password (read from stdin without -p)
  nfsimap demo [--dir DIR]                 create a demo spool, user demo/demo and config in DIR, and serve on 127.0.0.1:1143
  nfsimap version                          print the version
` + admin.Usage + `  (-s SOCKET, or -c FILE to read admin.socket from a config file; default /run/nfsimap/admin.sock)
`

// run executes a subcommand and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stderr, sigs)
	case "config":
		err = cmdConfig(args[1:], stdout)
	case "pw":
		err = cmdPw(args[1:], stdin, stdout)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, stderr, sigs)
	case "ring", "where", "who", "kick", "drain":
		err = cmdAdmin(ctx, args[0], args[1:], stdout)
		if errors.Is(err, admin.ErrUsage) {
			fmt.Fprintf(stderr, "nfsimap %s: %v\n%s", args[0], err, usage)
			return 2
		}
	case "version":
		fmt.Fprintf(stdout, "nfsimap %s\n", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "nfsimap: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "nfsimap %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
