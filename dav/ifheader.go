package dav

import (
	"net/http"
	"strings"
)

// ifCondition is one condition of an If header list.
type ifCondition struct {
	not   bool
	token string // state token (Coded-URL content), or ""
	etag  string // entity tag with quotes, or ""
}

// ifList is one parenthesised list, with its resource tag ("" = the
// request URI).
type ifList struct {
	resource string
	conds    []ifCondition
}

// maxIfConditions caps the conditions of one If header: real clients send
// one or two; a long list is work the server does per lock and resource.
const maxIfConditions = 64

// parseIf parses an If header (RFC 4918 §10.4). ok is false for a
// malformed header.
func parseIf(v string) (lists []ifList, ok bool) {
	s := strings.TrimSpace(v)
	if s == "" {
		return nil, false
	}
	tagged := s[0] == '<'
	resource := ""
	n := 0
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		switch s[0] {
		case '<':
			if !tagged {
				return nil, false
			}
			end := strings.IndexByte(s, '>')
			if end < 0 {
				return nil, false
			}
			resource = s[1:end]
			s = s[end+1:]
			s = strings.TrimLeft(s, " \t")
			if s == "" || s[0] != '(' {
				return nil, false
			}
		case '(':
			end, conds, good := parseIfList(s)
			if !good {
				return nil, false
			}
			n += len(conds)
			if n > maxIfConditions {
				return nil, false
			}
			lists = append(lists, ifList{resource: resource, conds: conds})
			s = s[end:]
		default:
			return nil, false
		}
	}
	return lists, len(lists) > 0
}

// parseIfList parses "(" 1*Condition ")" at the start of s and returns
// the index after ")".
func parseIfList(s string) (int, []ifCondition, bool) {
	i := 1
	var conds []ifCondition
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			return 0, nil, false
		}
		if s[i] == ')' {
			return i + 1, conds, len(conds) > 0
		}
		var c ifCondition
		if len(s)-i >= 3 && strings.EqualFold(s[i:i+3], "not") {
			c.not = true
			i += 3
			for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
				i++
			}
			if i >= len(s) {
				return 0, nil, false
			}
		}
		switch s[i] {
		case '<':
			end := strings.IndexByte(s[i:], '>')
			if end < 0 {
				return 0, nil, false
			}
			c.token = s[i+1 : i+end]
			i += end + 1
		case '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return 0, nil, false
			}
			c.etag = strings.TrimPrefix(strings.TrimSpace(s[i+1:i+end]), "W/")
			i += end + 1
		default:
			return 0, nil, false
		}
		conds = append(conds, c)
	}
}

// ifTokens returns every state token named in the lists: the lock tokens
// the client submits (RFC 4918 §10.4.1).
func ifTokens(lists []ifList) []string {
	var out []string
	for _, l := range lists {
		for _, c := range l.conds {
			if c.token != "" && !c.not {
				out = append(out, c.token)
			}
		}
	}
	return out
}

// resourceState is what If conditions are evaluated against.
type resourceState struct {
	lockPath string
	etag     string // "" when the resource does not exist
}

// evalIf evaluates the If header: true when some list has all its
// conditions true (RFC 4918 §10.4.3). resolve maps a tagged list's
// resource to its state.
func (h *Handler) evalIf(lists []ifList, self resourceState, resolve func(string) (resourceState, bool)) bool {
	for _, l := range lists {
		st := self
		if l.resource != "" {
			var ok bool
			st, ok = resolve(l.resource)
			if !ok {
				continue
			}
		}
		all := true
		for _, c := range l.conds {
			var v bool
			if c.token != "" {
				v = h.locks.valid(c.token, st.lockPath)
			} else {
				v = st.etag != "" && c.etag == st.etag
			}
			if c.not {
				v = !v
			}
			if !v {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// checkIf applies the If header of r, if any, to the request's target:
// 400 when malformed, 412 when it evaluates false. It returns the
// submitted lock tokens.
func (h *Handler) checkIf(r *http.Request, rq *request) ([]string, error) {
	v := r.Header.Get("If")
	if v == "" {
		return nil, nil
	}
	lists, ok := parseIf(v)
	if !ok {
		return nil, errorf(http.StatusBadRequest, "malformed If header")
	}
	self := rq.state()
	if !h.evalIf(lists, self, func(u string) (resourceState, bool) { return h.stateOfURL(r, rq, u) }) {
		return nil, errorf(http.StatusPreconditionFailed, "the If header's conditions do not hold")
	}
	return ifTokens(lists), nil
}
