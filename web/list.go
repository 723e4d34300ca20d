package web

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/davmail/davmail/mailbox"
)

// maxQuery caps the search text: 200 bytes is a long subject fragment;
// longer input is cut rather than refused.
const maxQuery = 200

// folderItem is one line of the folder tree.
type folderItem struct {
	Path     string
	Label    string
	Depth    int // 0 for top-level folders; the template indents by it
	Messages int
	Unseen   int
	URL      string
	Current  bool
}

// folderView is the folder page's message list.
type folderView struct {
	Path     string
	Label    string
	Messages int
	Query    string
	Sort     string
	Asc      bool
	Cols     []sortCol
	Rows     []row
	Pager    pager
	Trash    bool // this is the Deleted Items folder
	Duration string
}

type sortCol struct {
	Key, Label, URL string
	AriaSort        string // "ascending", "descending" or "none"
	Arrow           string
}

type row struct {
	URL       string
	From      string
	FromTitle string
	Subject   string
	Date      string
	DateISO   string
	DateTitle string
	Size      string
	Unread    bool
	Flagged   bool
	Attach    bool
	Oversized bool
}

type pager struct {
	From, To, Total int
	Page, Pages     int
	PrevURL         string
	NextURL         string
}

// folderTree lists the user's folders with their counts, in the store's
// order (sorted by path, INBOX first), marking current.
func (h *Handler) folderTree(ctx context.Context, mb mailbox.Mailbox, current string) ([]folderItem, error) {
	fs, err := mb.Folders(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]folderItem, 0, len(fs))
	for _, f := range fs {
		out = append(out, folderItem{
			Path: f.Path, Label: folderLabel(f.Path), Depth: strings.Count(f.Path, "/"),
			Messages: f.Messages, Unseen: f.Unseen, Current: f.Path == current,
			URL: h.folderURL(f.Path, listQuery{}),
		})
	}
	return out, nil
}

func parseListQuery(r *http.Request) listQuery {
	v := r.URL.Query()
	q := listQuery{Sort: v.Get("sort"), Asc: v.Get("dir") == "asc", Q: strings.TrimSpace(v.Get("q"))}
	switch q.Sort {
	case "from", "subject", "size":
	default:
		q.Sort = "date"
	}
	q.Page, _ = strconv.Atoi(v.Get("p"))
	if q.Page < 1 {
		q.Page = 1
	}
	if len(q.Q) > maxQuery {
		q.Q = strings.ToValidUTF8(q.Q[:maxQuery], "")
	}
	return q
}

func (h *Handler) folderPage(w http.ResponseWriter, r *http.Request) error {
	wh := whoFrom(r.Context())
	start := time.Now()
	folder := r.URL.Query().Get("f")
	if folder == "" {
		folder = mailbox.Inbox
	}
	q := parseListQuery(r)
	mb, err := h.opts.Store.Mailbox(r.Context(), wh.User)
	if err != nil {
		return err
	}
	f, err := mb.Folder(r.Context(), folder)
	if err != nil {
		return err
	}
	msgs, err := mb.List(r.Context(), folder)
	if err != nil {
		return err
	}
	tree, err := h.folderTree(r.Context(), mb, folder)
	if err != nil {
		return err
	}
	page, total := selectPage(msgs, q, h.opts.PageSize)
	pages := (total + h.opts.PageSize - 1) / h.opts.PageSize
	if q.Page > pages && pages > 0 {
		q.Page = pages
		page, total = selectPage(msgs, q, h.opts.PageSize)
	}
	v := &folderView{
		Path: folder, Label: folderFullLabel(folder), Messages: f.Messages,
		Query: q.Q, Sort: q.Sort, Asc: q.Asc, Trash: h.isTrash(f),
	}
	now := time.Now()
	for _, i := range page {
		m := &msgs[i]
		name, addr := splitFrom(m.Envelope.From)
		subj := m.Envelope.Subject
		if subj == "" {
			subj = "(no subject)"
		}
		d := messageDate(m)
		v.Rows = append(v.Rows, row{
			URL: h.messageURL(folder, m.Name), From: name, FromTitle: addr, Subject: subj,
			Date: shortDate(d, now), DateISO: d.Format(time.RFC3339), DateTitle: d.Format("Mon, 2 Jan 2006 15:04 MST"),
			Size: sizeText(m.Size), Unread: m.Flags&mailbox.FlagSeen == 0, Flagged: m.Flags&mailbox.FlagFlagged != 0,
			Attach: m.Envelope.HasAttachments, Oversized: m.Size > h.opts.MaxMessageSize,
		})
	}
	v.Pager = pager{Total: total, Page: q.Page, Pages: pages}
	if total > 0 {
		v.Pager.From = (q.Page-1)*h.opts.PageSize + 1
		v.Pager.To = v.Pager.From + len(page) - 1
	}
	if q.Page > 1 {
		p := q
		p.Page--
		v.Pager.PrevURL = h.folderURL(folder, p)
	}
	if q.Page < pages {
		p := q
		p.Page++
		v.Pager.NextURL = h.folderURL(folder, p)
	}
	for _, c := range []struct{ key, label string }{{"from", "From"}, {"subject", "Subject"}, {"date", "Date"}, {"size", "Size"}} {
		sc := sortCol{Key: c.key, Label: c.label, AriaSort: "none"}
		next := listQuery{Sort: c.key, Q: q.Q, Asc: c.key == "from" || c.key == "subject"}
		if q.Sort == c.key {
			next.Asc = !q.Asc
			sc.AriaSort, sc.Arrow = "descending", "▼"
			if q.Asc {
				sc.AriaSort, sc.Arrow = "ascending", "▲"
			}
		}
		sc.URL = h.folderURL(folder, next)
		v.Cols = append(v.Cols, sc)
	}
	v.Duration = time.Since(start).Round(100 * time.Microsecond).String()
	h.page(w, r, http.StatusOK, "folder", pageData{Title: folderFullLabel(folder), Folders: tree, Folder: v})
	return nil
}

// selectPage filters msgs by q.Q, orders them by q and returns the
// indexes (into msgs) of page q.Page and the number of matches. It works
// on the index's slice without copying messages: one []int32 of
// positions and, for the date and size orders, one []int64 of keys.
func selectPage(msgs []mailbox.Message, q listQuery, size int) ([]int32, int) {
	idx := make([]int32, 0, len(msgs))
	needle := strings.ToLower(q.Q)
	for i := range msgs {
		if needle != "" && !containsFold(msgs[i].Envelope.Subject, needle) && !containsFold(msgs[i].Envelope.From, needle) {
			continue
		}
		idx = append(idx, int32(i))
	}
	total := len(idx)
	var cmp func(a, b int32) int
	switch q.Sort {
	case "date", "size":
		keys := make([]int64, len(msgs))
		for _, i := range idx {
			if q.Sort == "size" {
				keys[i] = msgs[i].Size
			} else {
				keys[i] = messageDate(&msgs[i]).UnixNano()
			}
		}
		cmp = func(a, b int32) int {
			if c := compareInt(keys[a], keys[b]); c != 0 {
				return c
			}
			return compareInt(int64(msgs[a].UID), int64(msgs[b].UID))
		}
	case "from":
		cmp = func(a, b int32) int {
			na, _ := splitFrom(msgs[a].Envelope.From)
			nb, _ := splitFrom(msgs[b].Envelope.From)
			if c := compareFold(na, nb); c != 0 {
				return c
			}
			return compareInt(int64(msgs[a].UID), int64(msgs[b].UID))
		}
	default: // subject
		cmp = func(a, b int32) int {
			if c := compareFold(msgs[a].Envelope.Subject, msgs[b].Envelope.Subject); c != 0 {
				return c
			}
			return compareInt(int64(msgs[a].UID), int64(msgs[b].UID))
		}
	}
	if !q.Asc {
		asc := cmp
		cmp = func(a, b int32) int { return asc(b, a) }
	}
	lo := (q.Page - 1) * size
	if lo >= total {
		return nil, total
	}
	hi := min(lo+size, total)
	// Only the first hi positions need to be in order: for the first
	// pages of a large folder, a partial selection (a heap of hi
	// positions) does n·log(hi) comparisons instead of n·log(n).
	if hi*8 < total {
		return topK(idx, hi, cmp)[lo:hi], total
	}
	slices.SortFunc(idx, cmp)
	return idx[lo:hi], total
}

// topK returns the k smallest elements of idx under cmp, sorted.
func topK(idx []int32, k int, cmp func(a, b int32) int) []int32 {
	// heap holds the k smallest seen so far as a max-heap.
	heap := make([]int32, 0, k)
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(heap) {
				return
			}
			big := l
			if r := l + 1; r < len(heap) && cmp(heap[r], heap[l]) > 0 {
				big = r
			}
			if cmp(heap[big], heap[i]) <= 0 {
				return
			}
			heap[i], heap[big] = heap[big], heap[i]
			i = big
		}
	}
	for _, x := range idx {
		if len(heap) < k {
			heap = append(heap, x)
			for i := len(heap) - 1; i > 0; {
				p := (i - 1) / 2
				if cmp(heap[i], heap[p]) <= 0 {
					break
				}
				heap[i], heap[p] = heap[p], heap[i]
				i = p
			}
			continue
		}
		if cmp(x, heap[0]) < 0 {
			heap[0] = x
			down(0)
		}
	}
	slices.SortFunc(heap, cmp)
	return heap
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// messageDate is the date a list shows and sorts by: the Date header,
// else the delivery time.
func messageDate(m *mailbox.Message) time.Time {
	if !m.Envelope.Date.IsZero() {
		return m.Envelope.Date
	}
	return m.InternalDate
}

// shortDate shows a date compactly relative to now: the time today, the
// day this year, the full date otherwise (in the server's zone).
func shortDate(d, now time.Time) string {
	if d.IsZero() {
		return ""
	}
	d, now = d.Local(), now.Local()
	switch {
	case d.Year() == now.Year() && d.YearDay() == now.YearDay():
		return d.Format("15:04")
	case d.Year() == now.Year():
		return d.Format("2 Jan")
	}
	return d.Format("2006-01-02")
}

// splitFrom splits a From as the index keeps it ("Name <addr>") into the
// name to show and the address; a bare address is both.
func splitFrom(from string) (name, addr string) {
	from = strings.TrimSpace(from)
	if i := strings.LastIndex(from, "<"); i > 0 && strings.HasSuffix(from, ">") {
		name = strings.Trim(strings.TrimSpace(from[:i]), `"`)
		addr = from[i+1 : len(from)-1]
		if name == "" {
			name = addr
		}
		return name, addr
	}
	return from, from
}

// containsFold reports whether s contains lowerNeedle (already lower
// case), ignoring case. ASCII text, the common case, is compared without
// allocating.
func containsFold(s, lowerNeedle string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return strings.Contains(strings.ToLower(s), lowerNeedle)
		}
	}
	n := len(lowerNeedle)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lowerNeedle[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}

// compareFold compares two strings ignoring ASCII case (other letters
// compare by code point), without allocating.
func compareFold(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return compareInt(int64(ca), int64(cb))
		}
	}
	return compareInt(int64(len(a)), int64(len(b)))
}
