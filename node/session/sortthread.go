package session

import (
	"github.com/emersion/go-imap/v2"

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
	return sortthread.SortNumbers(msgs, cmd.Keys, uid), nil
}

// Thread answers THREAD and UID THREAD (RFC 5256).
func (s *Session) Thread(uid bool, cmd *sortthread.ThreadCommand) ([]*sortthread.Node, error) {
	s.selMu.Lock()
	defer s.selMu.Unlock()
	msgs, err := s.sortThreadMessagesLocked(cmd.Criteria, true)
	if err != nil {
		return nil, err
	}
	nodes, err := sortthread.Thread(msgs, cmd.Algorithm)
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
			content, err := m.Content()
			if err != nil {
				if isGone(err) {
					continue
				}
				return nil, s.userError("sort", sel.name, err)
			}
			h := readHeader(content)
			sm.Date = h.Get("Date")
			sm.Subject = h.Get("Subject")
			sm.From = h.Get("From")
			sm.To = h.Get("To")
			sm.Cc = h.Get("Cc")
			sm.MessageID = h.Get("Message-Id")
			sm.InReplyTo = h.Get("In-Reply-To")
			sm.References = h.Get("References")
		}
		out = append(out, sm)
	}
	return out, nil
}
