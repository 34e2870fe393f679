package session

import (
	"github.com/emersion/go-imap/v2"

	"github.com/nfsimap/nfsimap/localindex"
	"github.com/nfsimap/nfsimap/node/sortthread"
)

// Sort answers SORT and UID SORT (RFC 5256) for the front's command layer:
// the messages matching cmd.Criteria, in sort order, as sequence numbers
// (UIDs if uid). The criteria strings are already UTF-8 (the parser decoded
// the command's charset).
func (s *Session) Sort(uid bool, cmd *sortthread.SortCommand) ([]uint32, error) {
	s.selMu.Lock()
	defer s.selMu.Unlock()
	msgs, err := s.sortThreadMessagesLocked(cmd.Criteria, sortNeedsHeader(cmd.Keys))
	if err != nil {
		return nil, err
	}
	return sortthread.SortNumbersKeys(msgs, cmd.Keys, uid, s.sel.box.sortKeys), nil
}

// Thread answers THREAD and UID THREAD (RFC 5256).
func (s *Session) Thread(uid bool, cmd *sortthread.ThreadCommand) ([]*sortthread.Node, error) {
	s.selMu.Lock()
	defer s.selMu.Unlock()
	msgs, err := s.sortThreadMessagesLocked(cmd.Criteria, true)
	if err != nil {
		return nil, err
	}
	nodes, err := sortthread.ThreadKeys(msgs, cmd.Algorithm, s.sel.box.sortKeys)
	if err != nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: err.Error()}
	}
	return nodes, nil
}

func sortNeedsHeader(keys []sortthread.SortKey) bool {
	for _, k := range keys {
		switch k.Criterion {
		case sortthread.SortArrival, sortthread.SortSize:
		default:
			return true
		}
	}
	return false
}

// sortThreadMessagesLocked runs the SEARCH matcher and collects what SORT
// and THREAD need of each matching message.
func (s *Session) sortThreadMessagesLocked(criteria *imap.SearchCriteria, withHeader bool) ([]sortthread.Message, error) {
	sel, err := s.selectedLocked()
	if err != nil {
		return nil, err
	}
	found, err := s.searchLocked(sel, criteria)
	if err != nil {
		return nil, err
	}
	out := make([]sortthread.Message, 0, len(found))
	for _, m := range found {
		meta := m.loadMeta()
		if m.err != nil {
			if isGone(m.err) {
				continue
			}
			return nil, s.userError("sort", sel.name, m.err)
		}
		sm := sortthread.Message{
			SeqNum:       m.seq,
			UID:          uint32(m.UID()),
			Size:         meta.size,
			InternalDate: meta.date,
		}
		if withHeader {
			// From the index when the message was parsed before (a warm
			// mailbox: no spool reads), else read and parse it once.
			rec, ok := sel.box.parsed(m.v.msg.UID)
			if !ok {
				if _, err := m.Content(); err != nil {
					if isGone(err) {
						continue
					}
					return nil, s.userError("sort", sel.name, err)
				}
				rec, ok = sel.box.parsed(m.v.msg.UID)
			}
			var h localindex.Headers
			if ok {
				h = rec.Header
			} else {
				h = headersOf(m.content)
			}
			sm.Date, sm.Subject, sm.From, sm.To, sm.Cc = h.Date, h.Subject, h.From, h.To, h.Cc
			sm.MessageID, sm.InReplyTo, sm.References = h.MessageID, h.InReplyTo, h.References
		}
		out = append(out, sm)
	}
	return out, nil
}
