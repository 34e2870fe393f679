package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nfsimap/nfsimap/node/httpapi"
)

// Client talks to a node's admin socket.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient makes a client of the socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}
	return &Client{socket: path, http: &http.Client{Transport: tr}}
}

// ErrRemote wraps an error the node answered.
var ErrRemote = errors.New("admin: node says")

func (c *Client) do(ctx context.Context, method, path string, q url.Values, out any) error {
	u := "http://nfsimap" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin: talking to the node at %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("admin: reading the answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w: %s", ErrRemote, strings.TrimSpace(string(body)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("admin: decoding the answer: %w", err)
	}
	return nil
}

// Ring returns the members with their state and share of users.
func (c *Client) Ring(ctx context.Context) (*RingReport, error) {
	var r RingReport
	if err := c.do(ctx, http.MethodGet, "/ring", nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Where returns the user's preference list.
func (c *Client) Where(ctx context.Context, user string) (*httpapi.RingInfo, error) {
	var r httpapi.RingInfo
	if err := c.do(ctx, http.MethodGet, "/where", url.Values{"user": {user}}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Who returns the connections on the node.
func (c *Client) Who(ctx context.Context) ([]Entry, error) {
	var r []Entry
	if err := c.do(ctx, http.MethodGet, "/who", nil, &r); err != nil {
		return nil, err
	}
	return r, nil
}

// Kick ends the user's connections on the node and says how many.
func (c *Client) Kick(ctx context.Context, user string) (int, error) {
	var r KickResult
	if err := c.do(ctx, http.MethodPost, "/kick", url.Values{"user": {user}}, &r); err != nil {
		return 0, err
	}
	return r.Kicked, nil
}

// Drain drains the node and returns when it is done.
func (c *Client) Drain(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/drain", nil, nil)
}

// Usage lists the commands Run understands.
const Usage = `  nfsimap ring [-s SOCKET]                 ring members, state and share of users
  nfsimap where [-s SOCKET] USER           the user's preference list
  nfsimap who [-s SOCKET]                  users and connections on this node
  nfsimap kick [-s SOCKET] USER            end the user's connections on this node
  nfsimap drain [-s SOCKET]                route around this node, say BYE to its clients, leave the ring
`

// ErrUsage is returned by Run for wrong arguments.
var ErrUsage = errors.New("admin: usage")

// Run runs one admin command (cmd is "ring", "where", "who", "kick" or
// "drain"; args are the rest of the command line without any -s option,
// which the caller resolves to socket) and prints its result as a table
// on w.
func Run(ctx context.Context, socket, cmd string, args []string, w io.Writer) error {
	c := NewClient(socket)
	need := func(n int) error {
		if len(args) != n {
			return fmt.Errorf("%w: %s takes %d argument(s)", ErrUsage, cmd, n)
		}
		return nil
	}
	switch cmd {
	case "ring":
		if err := need(0); err != nil {
			return err
		}
		r, err := c.Ring(ctx)
		if err != nil {
			return err
		}
		return PrintRing(w, r)
	case "where":
		if err := need(1); err != nil {
			return err
		}
		r, err := c.Where(ctx, args[0])
		if err != nil {
			return err
		}
		return PrintWhere(w, r)
	case "who":
		if err := need(0); err != nil {
			return err
		}
		r, err := c.Who(ctx)
		if err != nil {
			return err
		}
		return PrintWho(w, r, time.Now())
	case "kick":
		if err := need(1); err != nil {
			return err
		}
		n, err := c.Kick(ctx, args[0])
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s: %d connection(s) ended\n", args[0], n)
		return err
	case "drain":
		if err := need(0); err != nil {
			return err
		}
		if err := c.Drain(ctx); err != nil {
			return err
		}
		_, err := fmt.Fprintln(w, "drained: the node has said BYE to its clients and left the ring")
		return err
	}
	return fmt.Errorf("%w: unknown command %q", ErrUsage, cmd)
}

// PrintRing writes the ring as a table.
func PrintRing(w io.Writer, r *RingReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "NODE\tSTATE\tSHARE\tADDRESS\tGOSSIP\tVERSION\t\n")
	for _, m := range r.Members {
		name := m.Name
		if name == r.Self {
			name += " *"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f%%\t%s\t%s\t%s\t\n", name, m.State, 100*m.Share, m.Addr, m.Gossip, m.Version)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d member(s), epoch %d; * is this node\n", len(r.Members), r.Epoch)
	return err
}

// PrintWhere writes a user's preference list.
func PrintWhere(w io.Writer, r *httpapi.RingInfo) error {
	served := r.ServedBy
	if served == "" {
		served = "(no alive member)"
	}
	fmt.Fprintf(w, "user %s is served by %s; a login on %s goes to %s\n", r.User, served, r.Self, strings.Join(r.Route, ", then "))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "RANK\tNODE\tSTATE\tADDRESS\t\n")
	for i, m := range r.Preference {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t\n", i+1, m.Name, m.State, m.Addr)
	}
	return tw.Flush()
}

// PrintWho writes the connections, with their age at now.
func PrintWho(w io.Writer, list []Entry, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "USER\tKIND\tPEER\tREMOTE\tTLS\tSINCE\tCONN\t\n")
	users := map[string]bool{}
	for _, e := range list {
		users[e.User] = true
		peer := e.Peer
		if peer == "" {
			peer = "-"
		}
		tls := "no"
		if e.TLS {
			tls = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", e.User, e.Kind, peer, e.Remote, tls, now.Sub(e.Since).Round(time.Second), e.ID)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d user(s), %d connection(s)\n", len(users), len(list))
	return err
}
