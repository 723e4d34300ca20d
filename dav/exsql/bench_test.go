package exsql

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// msgRow is a message as a mailbox index would hand it to the evaluator:
// fixed fields and a switch on the property URI, no map and no
// allocation (the shape the dav handler's row adapter should have).
type msgRow struct {
	uid, size, flags int64
	read, flagged    bool
	subject, from    string
	msgID, name      string
	date             time.Time
	keywords         []string
}

func (m *msgRow) Value(p string) (Value, bool) {
	switch p {
	case pIsFolder, pIsHidden:
		return BoolValue(false), true
	case pRead:
		return BoolValue(m.read), true
	case pImapUID:
		return IntValue(m.uid), true
	case pSize:
		return IntValue(m.size), true
	case pMsgFlags:
		return IntValue(m.flags), true
	case pSubject:
		return StringValue(m.subject), true
	case "urn:schemas:httpmail:from":
		return StringValue(m.from), true
	case pLastMod, pDate:
		return TimeValue(m.date), true
	case pMsgIDHeader:
		return StringValue(m.msgID), true
	case pURLComp:
		return StringValue(m.name), true
	case pFlagStatus:
		if m.flagged {
			return IntValue(2), true
		}
	case pKeywords:
		if len(m.keywords) > 0 {
			return StringsValue(m.keywords), true
		}
	}
	return Value{}, false
}

// syntheticRows makes n messages with a deterministic mix of subjects,
// dates, flags and keywords (about one in 50 subjects says "hello").
func syntheticRows(n int) []*msgRow {
	rnd := rand.New(rand.NewPCG(42, 7))
	words := []string{"Re: quarterly budget", "Meeting notes", "Fwd: Grüße aus Köln", "invoice 2024-117", "[PATCH] fix 100% CPU", "lunch?", "Your order has shipped"}
	base := time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]*msgRow, n)
	for i := range rows {
		subj := words[rnd.IntN(len(words))]
		if rnd.IntN(50) == 0 {
			subj = "Hello from the team"
		}
		var kw []string
		if rnd.IntN(10) == 0 {
			kw = []string{"Important"}
		}
		rows[i] = &msgRow{
			uid: int64(i + 1), size: int64(500 + rnd.IntN(200000)), flags: int64(rnd.IntN(2)),
			read: rnd.IntN(3) == 0, flagged: rnd.IntN(20) == 0,
			subject: subj, from: fmt.Sprintf("user%d@example.com", rnd.IntN(100)),
			msgID: fmt.Sprintf("<m%d@example.com>", i), name: fmt.Sprintf("msg%d.EML", i),
			date:     base.Add(time.Duration(rnd.IntN(365*24)) * time.Hour),
			keywords: kw,
		}
	}
	return rows
}

// benchQueries are §5.2 (b), a typical (c), and the TEXT search of §5.2's
// source shapes, as complete statements.
var benchQueries = map[string]string{
	"52b-list": `SELECT "` + pPermURL + `","DAV:uid" FROM SCOPE('Shallow TRAVERSAL OF "/exchange/jdoe/Inbox"') WHERE ("DAV:isfolder" = false And "DAV:ishidden" = false) ORDER BY "` + pImapUID + `" DESC`,
	"52c-search": `SELECT "` + pPermURL + `","DAV:uid" FROM SCOPE('Shallow TRAVERSAL OF "/exchange/jdoe/Inbox"') WHERE ("DAV:isfolder" = false And "DAV:ishidden" = false And ` +
		`("urn:schemas:httpmail:read" = false And "urn:schemas:httpmail:subject" like '%hello%' And "DAV:getlastmodified" >= '2024/01/01 00:00:00' ` +
		`And "` + pMsgIDHeader + `" = '<m1@example.com>')) ORDER BY "` + pImapUID + `" DESC`,
	"52c-unseen-subject": `SELECT "` + pPermURL + `" FROM SCOPE('Shallow TRAVERSAL OF "/exchange/jdoe/Inbox"') WHERE ("DAV:isfolder" = false And "DAV:ishidden" = false And ` +
		`("urn:schemas:httpmail:read" = false And "urn:schemas:httpmail:subject" like '%hello%' And "DAV:getlastmodified" >= '2024/01/01 00:00:00')) ORDER BY "` + pImapUID + `" DESC`,
	"text-or-keyword": `SELECT "` + pPermURL + `" FROM SCOPE('Shallow TRAVERSAL OF "/exchange/jdoe/Inbox"') WHERE ("DAV:isfolder" = false And "DAV:ishidden" = false And ` +
		`("urn:schemas:httpmail:subject" like '%budget%' Or "urn:schemas:httpmail:from" like '%budget%' Or "` + pKeywords + `" = 'Important') And (Not "` + pFlagStatus + `" = 2)) ORDER BY "` + pImapUID + `" DESC`,
}

// BenchmarkMatch evaluates typical DavMail queries over 100,000 messages;
// ns/row is the cost per message.
func BenchmarkMatch(b *testing.B) {
	const n = 100_000
	rows := syntheticRows(n)
	for _, name := range []string{"52b-list", "52c-search", "52c-unseen-subject", "text-or-keyword"} {
		q := mustParse(b, benchQueries[name])
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			matched := 0
			for b.Loop() {
				matched = 0
				for _, r := range rows {
					if q.Match(r) {
						matched++
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/row")
			b.ReportMetric(float64(matched), "matches")
		})
	}
}

// BenchmarkSort orders 100,000 messages by imapUid DESC (DavMail's ORDER
// BY), from index order (ascending uid).
func BenchmarkSort(b *testing.B) {
	rows := syntheticRows(100_000)
	q := mustParse(b, benchQueries["52b-list"])
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		work := slices.Clone(rows)
		b.StartTimer()
		Sort(q, work)
	}
}

func BenchmarkParse(b *testing.B) {
	sql := benchQueries["52c-search"]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(sql, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBenchQueriesMatch checks the benchmark's queries select what they
// should, so the figures measure real work.
func TestBenchQueriesMatch(t *testing.T) {
	rows := syntheticRows(5000)
	jan1 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, pred := range map[string]func(*msgRow) bool{
		"52b-list": func(*msgRow) bool { return true },
		"52c-search": func(m *msgRow) bool {
			return !m.read && m.subject == "Hello from the team" && !m.date.Before(jan1) && m.msgID == "<m1@example.com>"
		},
		"52c-unseen-subject": func(m *msgRow) bool {
			return !m.read && m.subject == "Hello from the team" && !m.date.Before(jan1)
		},
		"text-or-keyword": func(m *msgRow) bool {
			return (m.subject == "Re: quarterly budget" || len(m.keywords) > 0) && !m.flagged
		},
	} {
		q := mustParse(t, benchQueries[name])
		want, got := 0, 0
		for _, r := range rows {
			w, g := pred(r), q.Match(r)
			if w != g {
				t.Fatalf("%s: row %+v: Match %v, want %v", name, r, g, w)
			}
			if g {
				got++
			}
			if w {
				want++
			}
		}
		if name != "52c-search" && got == 0 {
			t.Errorf("%s matches nothing: the benchmark would measure nothing", name)
		}
		if n := testing.AllocsPerRun(10, func() {
			for _, r := range rows[:100] {
				q.Match(r)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per 100 rows", name, n)
		}
	}
}
