package davbench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Op is one kind of operation of the mix.
type Op int

// The operations of the mix, in the order the table prints them.
const (
	OpPropfind  Op = iota // PROPFIND Depth 1 on a folder
	OpGet                 // GET of a known message
	OpPut                 // PUT of a new message
	OpMove                // MOVE of an own message to the other scratch folder
	OpProppatch           // PROPPATCH of urn:schemas:httpmail:read
	OpSearch              // SEARCH (Exchange SQL) for unread messages
	OpLock                // LOCK of an own message, then UNLOCK
	numOps
)

// opUnlock is the UNLOCK half of OpLock: it has its own row in the
// statistics (its own latency and statuses) but no weight in the mix.
const opUnlock = numOps

// numRows is the number of statistics rows: the mix's operations and
// UNLOCK.
const numRows = numOps + 1

var opNames = [numRows]string{"propfind", "get", "put", "move", "proppatch", "search", "lock", "unlock"}

// String returns the operation's name as -mix spells it.
func (o Op) String() string {
	if o < 0 || int(o) >= len(opNames) {
		return "op" + strconv.Itoa(int(o))
	}
	return opNames[o]
}

// Mix holds the relative weight of each operation; an operation of
// weight 0 never runs.
type Mix [numOps]int

// DefaultMix is the mix of the issue: mostly reads, a steady trickle of
// every kind of write.
func DefaultMix() Mix { return Mix{30, 25, 15, 10, 10, 5, 5} }

// maxWeight bounds one weight so that the sum cannot overflow and the
// pick stays a plain IntN.
const maxWeight = 1_000_000

// ParseMix reads "propfind=30,get=25,…". Operations not named get weight
// 0; at least one weight must be positive.
func ParseMix(s string) (Mix, error) {
	var m Mix
	seen := [numOps]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return m, fmt.Errorf("mix: %q is not op=weight", part)
		}
		op := Op(-1)
		for i := range numOps {
			if strings.EqualFold(strings.TrimSpace(name), opNames[i]) {
				op = i
			}
		}
		if op < 0 {
			return m, fmt.Errorf("mix: unknown operation %q (want propfind, get, put, move, proppatch, search, lock)", name)
		}
		if seen[op] {
			return m, fmt.Errorf("mix: %s named twice", op)
		}
		seen[op] = true
		w, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || w < 0 || w > maxWeight {
			return m, fmt.Errorf("mix: weight of %s must be an integer from 0 to %d, not %q", op, maxWeight, val)
		}
		m[op] = w
	}
	if m.total() == 0 {
		return m, errors.New("mix: at least one operation needs a positive weight")
	}
	return m, nil
}

func (m Mix) total() int {
	n := 0
	for _, w := range m {
		n += w
	}
	return n
}

// String prints the mix as ParseMix reads it.
func (m Mix) String() string {
	var parts []string
	for i, w := range m {
		if w > 0 {
			parts = append(parts, opNames[i]+"="+strconv.Itoa(w))
		}
	}
	return strings.Join(parts, ",")
}

// pick draws an operation with the mix's weights.
func (m Mix) pick(r *rand.Rand) Op {
	n := r.IntN(m.total())
	for i, w := range m {
		if n < w {
			return Op(i)
		}
		n -= w
	}
	return numOps - 1 // unreachable: n < total
}

// User is one mailbox owner the clients log in as (HTTP Basic).
type User struct {
	Name     string
	Password string
}

// ParseUsers reads "alice:pw,bob:pw". A password may contain ':' (the
// name ends at the first one) but not ','; use a users file for those.
func ParseUsers(s string) ([]User, error) {
	var out []User
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		u, err := parseUser(part)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, errors.New("users: none given (want name:password,…)")
	}
	return out, nil
}

// ReadUsers reads a users file: one name:password a line, blank lines and
// lines starting with # ignored. (It is not davmail's users file, which
// holds bcrypt hashes: a load tool needs the passwords themselves.)
func ReadUsers(r io.Reader) ([]User, error) {
	var out []User
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(s) == "" || strings.HasPrefix(strings.TrimSpace(s), "#") {
			continue
		}
		u, err := parseUser(s)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, u)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("users file: no name:password line")
	}
	return out, nil
}

func parseUser(s string) (User, error) {
	name, pw, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || pw == "" {
		return User{}, fmt.Errorf("users: %q is not name:password", redact(s))
	}
	if strings.ContainsAny(name, "/?#% ") {
		return User{}, fmt.Errorf("users: %q is not a mailbox name", name)
	}
	return User{Name: name, Password: pw}, nil
}

// redact keeps a user entry's name and hides its password in messages.
func redact(s string) string {
	if name, _, ok := strings.Cut(s, ":"); ok {
		return name + ":***"
	}
	return s
}

// Resolver looks a host name up; *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// CheckURL parses the server's base URL and, unless allowRemote, refuses
// it when its host is not a loopback address: an IP literal must be
// loopback, a name must resolve to loopback addresses only.
func CheckURL(ctx context.Context, raw string, allowRemote bool, res Resolver) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url %q: want http:// or https://", raw)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("url %q has no host", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("url: give credentials with -users, not in the URL")
	}
	if allowRemote {
		return u, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !ip.IsLoopback() {
			return nil, fmt.Errorf("url: %s is not a loopback address; davbench refuses remote servers without -allow-remote", host)
		}
		return u, nil
	}
	// Five seconds: a local lookup answers in microseconds; a resolver that
	// takes longer is not pointing at loopback.
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := res.LookupNetIP(lctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("url: resolving %s: %w", host, err)
	}
	for _, ip := range ips {
		if !ip.Unmap().IsLoopback() {
			return nil, fmt.Errorf("url: %s resolves to %s, not a loopback address; davbench refuses remote servers without -allow-remote", host, ip)
		}
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("url: %s resolves to nothing", host)
	}
	return u, nil
}

// Config is one benchmark run.
type Config struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:8080.
	URL string
	// Users are the mailboxes; client i logs in as Users[i % len(Users)].
	Users []User
	// Clients is the number of concurrent clients. 0 means 8.
	Clients int
	// Duration is how long the load runs (setup, check and cleanup come
	// on top). 0 means 10 s.
	Duration time.Duration
	// Seed seeds every client's choices: client i draws from a PCG
	// seeded with (Seed, i).
	Seed uint64
	// Mix weighs the operations. The zero Mix means DefaultMix.
	Mix Mix
	// Timeout bounds one request. 0 means 30 s.
	Timeout time.Duration
	// AllowRemote accepts a server that is not on loopback.
	AllowRemote bool
	// Keep leaves the scratch folders in place after the run.
	Keep bool
	// SharedFolder is a folder of each user's mailbox that PROPFIND also
	// lists (and whose messages GET sometimes reads), besides the
	// client's scratch folders; "" for none. Usually "Inbox".
	SharedFolder string
	// Prefix is where the server mounts the mailboxes. "" means
	// "/exchange/".
	Prefix string
}

// Defaults, with their reasons.
const (
	// defaultClients: the figure; enough to overlap requests of
	// one user (four clients each for two users) on a two-core machine.
	defaultClients = 8
	// defaultDuration: long enough for the fair share's burst to run out
	// so the steady state shows, short enough for a quick look.
	defaultDuration = 10 * time.Second
	// defaultTimeout: far above any answer on loopback; a request that
	// takes longer is counted as a transport error (its write in doubt).
	defaultTimeout = 30 * time.Second
	// maxClients: each client is a goroutine and a connection; beyond a
	// thousand on loopback the tool measures itself, not the server.
	maxClients = 1000
)

func (c Config) withDefaults() (Config, error) {
	if c.Clients == 0 {
		c.Clients = defaultClients
	}
	if c.Duration == 0 {
		c.Duration = defaultDuration
	}
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	if c.Mix.total() == 0 {
		c.Mix = DefaultMix()
	}
	if c.Prefix == "" {
		c.Prefix = "/exchange/"
	}
	switch {
	case c.Clients < 0 || c.Clients > maxClients:
		return c, fmt.Errorf("clients: want 1 to %d, not %d", maxClients, c.Clients)
	case c.Duration < 0:
		return c, fmt.Errorf("duration: %v is negative", c.Duration)
	case c.Timeout < 0:
		return c, fmt.Errorf("timeout: %v is negative", c.Timeout)
	case len(c.Users) == 0:
		return c, errors.New("no users")
	case !strings.HasPrefix(c.Prefix, "/") || !strings.HasSuffix(c.Prefix, "/"):
		return c, fmt.Errorf("prefix %q: want /…/", c.Prefix)
	}
	for _, w := range c.Mix {
		if w < 0 || w > maxWeight {
			return c, fmt.Errorf("mix: weight %d out of range", w)
		}
	}
	return c, nil
}

// compile-time check that the standard resolver fits.
var _ Resolver = (*net.Resolver)(nil)
