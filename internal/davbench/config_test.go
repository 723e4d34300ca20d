package davbench

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseMix(t *testing.T) {
	good := func(s string, want Mix) {
		t.Helper()
		m, err := ParseMix(s)
		if err != nil || m != want {
			t.Errorf("ParseMix(%q) = %v, %v; want %v", s, m, err, want)
		}
	}
	bad := func(s, msg string) {
		t.Helper()
		if _, err := ParseMix(s); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseMix(%q) = %v; want an error with %q", s, err, msg)
		}
	}
	good(DefaultMix().String(), DefaultMix())
	good("get=1", Mix{OpGet: 1})
	good(" PUT = 3 , lock=2,", Mix{OpPut: 3, OpLock: 2})
	bad("get", "not op=weight")
	bad("fly=1", "unknown operation")
	bad("get=1,get=2", "named twice")
	bad("get=-1", "integer from 0")
	bad("get=x", "integer from 0")
	bad("get=0", "positive weight")
	bad("", "positive weight")
}

func TestMixPick(t *testing.T) {
	m := Mix{OpGet: 3, OpPut: 1}
	r := rand.New(rand.NewPCG(1, 2))
	var n [numOps]int
	const draws = 40000
	for range draws {
		n[m.pick(r)]++
	}
	if n[OpGet]+n[OpPut] != draws {
		t.Fatalf("weight-0 operations drawn: %v", n)
	}
	// 3:1 within 5 %: far outside what 40,000 fair draws can miss by.
	if ratio := float64(n[OpGet]) / float64(n[OpPut]); ratio < 2.85 || ratio > 3.15 {
		t.Errorf("get/put = %.2f, want 3", ratio)
	}
}

func TestParseUsers(t *testing.T) {
	u, err := ParseUsers("alice:pw,bob:p:w")
	if err != nil || len(u) != 2 || u[1] != (User{"bob", "p:w"}) {
		t.Errorf("ParseUsers = %v, %v", u, err)
	}
	for _, s := range []string{"", "alice", "alice:", ":pw", "a/b:pw"} {
		if _, err := ParseUsers(s); err == nil {
			t.Errorf("ParseUsers(%q) accepted", s)
		} else if strings.Contains(err.Error(), "pw") && s != "a/b:pw" {
			t.Errorf("ParseUsers(%q): the error shows the password: %v", s, err)
		}
	}
	u, err = ReadUsers(strings.NewReader("# comment\r\nalice:a b,c\r\n\n  \nbob:x\n"))
	if err != nil || len(u) != 2 || u[0] != (User{"alice", "a b,c"}) {
		t.Errorf("ReadUsers = %v, %v", u, err)
	}
	if _, err := ReadUsers(strings.NewReader("# none\n")); err == nil {
		t.Error("ReadUsers of no user accepted")
	}
	if _, err := ReadUsers(strings.NewReader("ok:1\nbroken\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("ReadUsers of a bad line: %v", err)
	}
}

// fakeResolver answers from a table.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ips, ok := f[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	var out []netip.Addr
	for _, s := range ips {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

func TestCheckURL(t *testing.T) {
	res := fakeResolver{
		"localhost":   {"127.0.0.1", "::1"},
		"mapped.test": {"::ffff:127.0.0.2"},
		"mixed.test":  {"127.0.0.1", "192.0.2.7"},
		"remote.test": {"198.51.100.1"},
	}
	ctx := context.Background()
	for _, ok := range []string{"http://127.0.0.1:8080", "http://127.9.9.9/", "https://[::1]:443/", "http://localhost:8080", "http://mapped.test/"} {
		if _, err := CheckURL(ctx, ok, false, res); err != nil {
			t.Errorf("CheckURL(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"http://192.0.2.1/", "http://[2001:db8::1]/", "http://mixed.test/", "http://remote.test/", "http://unknown.test/", "ftp://127.0.0.1/", "http:///x", "http://u:p@127.0.0.1/", "::"} {
		if _, err := CheckURL(ctx, bad, false, res); err == nil {
			t.Errorf("CheckURL(%q) accepted", bad)
		}
	}
	if _, err := CheckURL(ctx, "http://remote.test/", true, res); err != nil {
		t.Errorf("-allow-remote: %v", err)
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	if h.quantile(0.5) != 0 {
		t.Error("empty histogram has a median")
	}
	// 1 ms … 100 ms, one each: p50 ≈ 50 ms, p99 ≈ 99 ms, within the 4.4 %
	// bucket width (upper bounds, so never under).
	for i := 1; i <= 100; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		got := h.quantile(c.q)
		if got < c.want || float64(got) > float64(c.want)*1.045 {
			t.Errorf("q%.2f = %v, want %v within 4.5 %%", c.q, got, c.want)
		}
	}
	var h2 histogram
	h2.add(time.Hour)
	h.merge(&h2)
	if h.count != 101 || h.quantile(1) != time.Hour {
		t.Errorf("merge: count %d, max %v", h.count, h.quantile(1))
	}
}

func TestBuildMessage(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	seen := map[string]bool{}
	for i := range 50 {
		id, raw := buildMessage(r, "tag", 3, i, "alice", time.Now())
		if seen[id] {
			t.Fatalf("Message-ID %s twice", id)
		}
		seen[id] = true
		if !selfDigestOK(raw) {
			t.Fatalf("message %d fails its own digest", i)
		}
		if len(raw) < smallMin || len(raw) > largeMax+2<<10 { // 2 KiB: headers and the last line
			t.Fatalf("message %d: %d bytes", i, len(raw))
		}
		raw[len(raw)-3] ^= 0x20
		if selfDigestOK(raw) {
			t.Fatalf("message %d: a changed byte passes the digest", i)
		}
	}
	if selfDigestOK([]byte("Subject: x\r\n\r\nbody")) {
		t.Error("a message without the digest header passes")
	}
}
