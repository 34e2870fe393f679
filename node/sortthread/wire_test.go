package sortthread

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// wireServer is a minimal IMAP server on loopback that answers SORT and
// THREAD with this package's parsers and formatters over a fixed mailbox,
// so that go-imap's real client checks both directions of the wire format.
type wireServer struct {
	ln       net.Listener
	msgs     []Message
	literalP bool // advertise LITERAL+
	parsed   chan parsedCommand
	wg       sync.WaitGroup
}

func startWireServer(t *testing.T, msgs []Message, literalPlus bool) *wireServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &wireServer{ln: ln, msgs: msgs, literalP: literalPlus, parsed: make(chan parsedCommand, 16)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer conn.Close()
				if err := s.serve(conn); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
					t.Errorf("wire server: %v", err)
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// parsedCommand is what the server parsed, and the raw arguments.
type parsedCommand struct {
	cmd  any
	args string
}

// readCommand reads one command with its literals inline, as on the wire,
// without the final CRLF.
func readCommand(r *bufio.Reader, w io.Writer) (string, error) {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		b.WriteString(line)
		body := strings.TrimSuffix(line, "\r\n")
		if !strings.HasSuffix(body, "}") {
			return strings.TrimSuffix(b.String(), "\r\n"), nil
		}
		open := strings.LastIndexByte(body, '{')
		spec := body[open+1 : len(body)-1]
		sync := !strings.HasSuffix(spec, "+")
		n, err := strconv.Atoi(strings.TrimSuffix(spec, "+"))
		if err != nil {
			return "", fmt.Errorf("bad literal %q", body)
		}
		if sync {
			if _, err := io.WriteString(w, "+ go on\r\n"); err != nil {
				return "", err
			}
		}
		lit := make([]byte, n)
		if _, err := io.ReadFull(r, lit); err != nil {
			return "", err
		}
		b.Write(lit)
	}
}

func (s *wireServer) serve(conn net.Conn) error {
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return err
	}
	caps := "IMAP4rev1 SORT SORT=DISPLAY THREAD=REFERENCES THREAD=ORDEREDSUBJECT"
	if s.literalP {
		caps += " LITERAL+"
	}
	if _, err := fmt.Fprintf(conn, "* OK [CAPABILITY %s] test server\r\n", caps); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	for {
		cmd, err := readCommand(r, conn)
		if err != nil {
			return err
		}
		tag, rest, _ := strings.Cut(cmd, " ")
		uid := false
		if len(rest) > 4 && strings.EqualFold(rest[:4], "UID ") {
			uid, rest = true, rest[4:]
		}
		name, args, _ := strings.Cut(rest, " ")
		var reply []byte
		switch strings.ToUpper(name) {
		case "SORT":
			c, err := ParseSort([]byte(args))
			if err != nil {
				reply = fmt.Appendf(nil, "%s BAD %v\r\n", tag, err)
				break
			}
			s.parsed <- parsedCommand{c, args}
			reply = FormatSort(SortNumbers(s.msgs, c.Keys, uid))
			reply = fmt.Appendf(reply, "%s OK SORT done\r\n", tag)
		case "THREAD":
			c, err := ParseThread([]byte(args))
			if err != nil {
				reply = fmt.Appendf(nil, "%s BAD %v\r\n", tag, err)
				break
			}
			s.parsed <- parsedCommand{c, args}
			nodes, err := Thread(s.msgs, c.Algorithm)
			if err != nil {
				return err
			}
			reply = FormatThreadResponse(nodes, uid)
			reply = fmt.Appendf(reply, "%s OK THREAD done\r\n", tag)
		case "LOGOUT":
			_, err := fmt.Fprintf(conn, "* BYE\r\n%s OK bye\r\n", tag)
			return err
		default:
			reply = fmt.Appendf(nil, "%s BAD unknown command\r\n", tag)
		}
		if _, err := conn.Write(reply); err != nil {
			return err
		}
	}
}

// threadDataString writes go-imap's parsed thread data back in wire form.
func threadDataString(list []imapclient.ThreadData) string {
	var b strings.Builder
	var write func(td imapclient.ThreadData)
	write = func(td imapclient.ThreadData) {
		b.WriteByte('(')
		for i, n := range td.Chain {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.FormatUint(uint64(n), 10))
		}
		if len(td.Chain) > 0 && len(td.SubThreads) > 0 {
			b.WriteByte(' ')
		}
		for _, sub := range td.SubThreads {
			write(sub)
		}
		b.WriteByte(')')
	}
	for _, td := range list {
		write(td)
	}
	return b.String()
}

// TestWireRoundTrip sends SORT and THREAD from go-imap's client over a
// loopback socket: the criteria it encodes (quoted strings, literals, with
// and without LITERAL+) must parse back to the same imap.SearchCriteria,
// and the client must read our responses back to the same numbers and
// thread trees.
func TestWireRoundTrip(t *testing.T) {
	msgs := syntheticMailbox(300)
	msgs = append(msgs, Message{SeqNum: 301, UID: 2000, MessageID: "<dummy-child-1@x>", References: "<gone@x>", Subject: "orphans"},
		Message{SeqNum: 302, UID: 2001, MessageID: "<dummy-child-2@x>", References: "<gone@x>", Subject: "Re: orphans"})
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	criteria := &imap.SearchCriteria{
		SeqNum: []imap.SeqSet{{{Start: 1, Stop: 10}, {Start: 20, Stop: 0}}},
		UID:    []imap.UIDSet{{{Start: 5, Stop: 9}}},
		Since:  day(2024, 3, 1), Before: day(2024, 3, 2),
		SentSince: day(2023, 1, 1),
		Header: []imap.SearchCriteriaHeaderField{
			{Key: "From", Value: "alice"}, {Key: "Subject", Value: "café \"quoted\""},
			{Key: "X-Tag", Value: "line\r\nbreak"},
		},
		Body:    []string{"naïve"},
		Text:    []string{"plain"},
		Flag:    []imap.Flag{imap.FlagSeen, "$Junk"},
		NotFlag: []imap.Flag{imap.FlagDeleted},
		Larger:  100, Smaller: 100000,
		Not: []imap.SearchCriteria{{Flag: []imap.Flag{imap.FlagFlagged}}},
		Or: [][2]imap.SearchCriteria{{
			{Header: []imap.SearchCriteriaHeaderField{{Key: "To", Value: "bob"}}},
			{Header: []imap.SearchCriteriaHeaderField{{Key: "Cc", Value: "bob"}}},
		}},
	}
	for _, literalPlus := range []bool{false, true} {
		t.Run(fmt.Sprintf("LITERAL+=%v", literalPlus), func(t *testing.T) {
			srv := startWireServer(t, msgs, literalPlus)
			conn, err := net.Dial("tcp", srv.ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c := imapclient.New(conn, nil)
			defer c.Close()
			// The capabilities (LITERAL+) come with the greeting.
			if err := c.WaitGreeting(); err != nil {
				t.Fatal(err)
			}

			keys := []imapclient.SortCriterion{{Key: imapclient.SortKeySubject}, {Key: "DISPLAYFROM", Reverse: true}}
			nums, err := c.UIDSort(&imapclient.SortOptions{SearchCriteria: criteria, SortCriteria: keys}).Wait()
			if err != nil {
				t.Fatal(err)
			}
			p := <-srv.parsed
			got := p.cmd.(*SortCommand)
			// The client sent the non-ASCII and CRLF strings as literals.
			if marker := "}\r\n"; literalPlus {
				marker = "+}\r\n"
				if !strings.Contains(p.args, marker) {
					t.Errorf("no LITERAL+ literal in %q", p.args)
				}
			} else if !strings.Contains(p.args, marker) || strings.Contains(p.args, "+}") {
				t.Errorf("no synchronizing literal in %q", p.args)
			}
			if !reflect.DeepEqual(got.Criteria, criteria) {
				t.Errorf("SORT criteria round trip:\n got %#v\nwant %#v", got.Criteria, criteria)
			}
			wantKeys := []SortKey{{Criterion: SortSubject}, {Criterion: SortDisplayFrom, Reverse: true}}
			if !reflect.DeepEqual(got.Keys, wantKeys) || got.Charset != "UTF-8" {
				t.Errorf("SORT keys %v charset %q", got.Keys, got.Charset)
			}
			if want := SortNumbers(msgs, wantKeys, true); !reflect.DeepEqual(nums, want) {
				t.Errorf("client read %d numbers, want %d", len(nums), len(want))
			}

			for _, alg := range []imap.ThreadAlgorithm{imap.ThreadReferences, imap.ThreadOrderedSubject} {
				data, err := c.Thread(&imapclient.ThreadOptions{Algorithm: alg, SearchCriteria: criteria}).Wait()
				if err != nil {
					t.Fatal(err)
				}
				tc := (<-srv.parsed).cmd.(*ThreadCommand)
				if !reflect.DeepEqual(tc.Criteria, criteria) || tc.Algorithm != string(alg) {
					t.Errorf("THREAD %s round trip: %#v", alg, tc)
				}
				nodes, _ := Thread(msgs, string(alg))
				if got, want := threadDataString(data), string(FormatThread(nodes, false)); got != want {
					t.Errorf("THREAD %s: client read\n %s\nwant\n %s", alg, got, want)
				}
			}
			if err := c.Logout().Wait(); err != nil {
				t.Error(err)
			}
		})
	}
}
