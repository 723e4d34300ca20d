// Package config holds davmail's settings and reads them from command-line
// flags, DAVMAIL_* environment variables and a YAML config file.
//
// Every setting is declared once, in the table in settings.go: its flag
// name (which is also its YAML key and, upper-snake-cased with a DAVMAIL_
// prefix, its environment variable), its default and its help text. The
// flag set, the environment lookup, the YAML loader, the --help text and
// docs/configuration.md are all derived from that table, so they cannot
// disagree.
//
// Precedence, highest first: flags, environment, config file, defaults.
package config

//go:generate go run ./gen -o ../../docs/configuration.md

import (
	"bytes"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/davmail/davmail/internal/auth"
	"github.com/davmail/davmail/limits"
	"gopkg.in/yaml.v3"
)

// Config is the complete configuration of a davmail server.
type Config struct {
	// ConfigFile is the YAML file the settings were read from, "" if none.
	ConfigFile string

	Listen      string // address to listen on, host:port
	Data        string // data directory: index, users file, maildirs by default
	MaildirRoot string // directory holding <user>/Maildir; default <Data>/maildir
	Users       string // users file; default <Data>/users

	MaxMessageSize   int64
	MaxResponseSize  int64
	MaxXMLBytes      int64
	MaxXMLElements   int
	MaxXMLDepth      int
	MaxDepthInfinity int // -1 refuses Depth: infinity always

	// IndexMemoryMessages caps the messages held in memory by the
	// mailboxes' indexes, all users together (both backends).
	IndexMemoryMessages int

	// IMAP backend (mailbox/imap): "" uses the Maildir.
	IMAPUpstream    string
	IMAPTLS         string
	IMAPMaxConns    int
	IMAPIdleTimeout time.Duration

	AttachmentFolders    bool // virtual <message>.attachments/ collections
	RangeOverResponseCap bool // Range within max-response-size on larger attachments

	// Fair share (package limits; docs/limits.md).
	UserTimeBudget    time.Duration
	UserMaxConcurrent int
	UserRate          int
	IPMaxConcurrent   int
	IPRate            int
	MaxInFlight       int

	// Sending through the Exchange submission URI (internal/submit).
	Relay         string // host:port; "" turns sending off
	RelayTLS      string // none, starttls, tls
	RelayUser     string
	RelayPassword string // never logged
	MailDomain    string // addresses are <user>@<MailDomain>

	LogLevel  string // trace, debug, info, warn, error
	LogFormat string // auto, json, console

	// HTTPS: both or neither; reloaded on SIGHUP.
	TLSCert string
	TLSKey  string
	// HTTPRedirectListen is a plain-HTTP address that redirects to HTTPS;
	// "" for none.
	HTTPRedirectListen string
	// TrustedProxies is the comma-separated list of IPs and CIDRs whose
	// X-Forwarded-* headers are believed (see TrustedProxyPrefixes).
	TrustedProxies string
	// MetricsListen serves /metrics on its own address, without auth; ""
	// serves it on Listen to admins only.
	MetricsListen string
	// ShutdownGrace is how long requests in flight may finish on SIGTERM.
	ShutdownGrace time.Duration
	// InitialAdminUser and InitialAdminPassword create an admin when the
	// users file has no users; no user is created without the password.
	InitialAdminUser     string
	InitialAdminPassword string // never logged

	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	ReadTimeout       time.Duration // 0: none

	// Demo seeds a demo user and mailbox on first run (davmail with no
	// arguments).
	Demo bool
}

// IndexDir is where the mailbox index lives: <Data>/index.
func (c Config) IndexDir() string { return filepath.Join(c.Data, "index") }

// maxConfigFile caps the YAML file: the full annotated config is ~2 KiB;
// 1 MiB is far beyond any real one and bounds what a stray path (a log
// file, a device) can make us read.
const maxConfigFile = 1 << 20

// Defaults returns the configuration with every setting at its default.
func Defaults() Config {
	var c Config
	for _, s := range settings {
		if s.Default == "" {
			continue
		}
		if err := s.set(&c, s.Default); err != nil {
			panic(fmt.Sprintf("config: bad default for %s: %v", s.Name, err)) // programmer error, caught by tests
		}
	}
	c.derive()
	return c
}

// derive fills the settings whose defaults depend on others.
func (c *Config) derive() {
	if c.MaildirRoot == "" {
		c.MaildirRoot = filepath.Join(c.Data, "maildir")
	}
	if c.Users == "" {
		c.Users = filepath.Join(c.Data, "users")
	}
}

// Error is a bad setting, naming where it came from.
type Error struct {
	Source  string // "flag --listen", "environment DAVMAIL_LISTEN", "davmail.yaml:3"
	Setting string
	Err     error
	// line is the file line of Source, for sorting Check's report; 0 if
	// none.
	line int
}

func (e *Error) Error() string {
	if e.Setting == "" {
		return fmt.Sprintf("%s: %v", e.Source, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.Source, e.Setting, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Load builds the configuration of command cmd (for the usage text) from
// its flag arguments, the environment (getenv, usually os.LookupEnv) and
// the config file named by --config or DAVMAIL_CONFIG. Precedence: flags
// over environment over config file over defaults. With -h or --help it
// writes the usage to out and returns flag.ErrHelp. Parse errors are also
// written to out.
func Load(cmd string, args []string, getenv func(string) (string, bool), out io.Writer) (Config, error) {
	if getenv == nil {
		getenv = func(string) (string, bool) { return "", false }
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // usage and errors are printed below, once
	flagVals := map[string]string{}
	for _, s := range settings {
		fs.Var(&rawFlag{name: s.Name, vals: flagVals, isBool: s.kind == kindBool}, s.Name, s.Help)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			Usage(out, cmd)
			return Config{}, err
		}
		fmt.Fprintf(out, "%s: %v\nRun '%s --help' for the settings.\n", cmd, err, cmd)
		return Config{}, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q", fs.Arg(0))
		fmt.Fprintf(out, "%s: %v\nRun '%s --help' for the settings.\n", cmd, err, cmd)
		return Config{}, err
	}

	c := Defaults()
	c.MaildirRoot, c.Users = "", "" // derived again after all sources

	// The config file: --config beats DAVMAIL_CONFIG.
	file, fileSrc := "", ""
	if v, ok := getenv(envName("config")); ok && v != "" {
		file, fileSrc = v, "environment "+envName("config")
	}
	if v, ok := flagVals["config"]; ok {
		file, fileSrc = v, "flag --config"
	}
	if file != "" {
		if err := loadFile(&c, file); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				err = &Error{Source: fileSrc, Err: err}
			}
			return Config{}, err
		}
		c.ConfigFile = file
	}
	for _, s := range settings {
		if s.Name == "config" {
			continue
		}
		if v, ok := getenv(s.Env); ok {
			if err := s.set(&c, v); err != nil {
				return Config{}, &Error{Source: "environment " + s.Env, Err: err}
			}
		}
	}
	for _, s := range settings {
		if s.Name == "config" {
			continue
		}
		if v, ok := flagVals[s.Name]; ok {
			if err := s.set(&c, v); err != nil {
				return Config{}, &Error{Source: "flag --" + s.Name, Err: err}
			}
		}
	}
	c.derive()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// rawFlag records a flag's text; parsing happens with the other sources so
// that all errors read the same.
type rawFlag struct {
	name   string
	vals   map[string]string
	isBool bool
}

func (f *rawFlag) String() string { return "" }
func (f *rawFlag) Set(v string) error {
	f.vals[f.name] = v
	return nil
}
func (f *rawFlag) IsBoolFlag() bool { return f.isBool }

// loadFile applies the settings of a YAML file: a mapping of setting names
// to plain values. Unknown keys, repeated keys and non-scalar values are
// errors naming the line.
func loadFile(c *Config, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return &Error{Source: path, Err: err}
	}
	if len(data) > maxConfigFile {
		return &Error{Source: path, Err: fmt.Errorf("larger than %s", limits.FormatSize(maxConfigFile))}
	}
	return applyYAML(c, path, data)
}

func applyYAML(c *Config, path string, data []byte) error {
	if errs, _ := applyYAMLAll(c, path, data); len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// yamlLineRE finds the line in yaml.v3's syntax errors ("yaml: line 3:
// did not find expected key").
var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// applyYAMLAll applies every good setting of the YAML document data to c
// and returns every problem, in file order, each naming its line; it goes
// on past a bad setting so that `davmail config check` can list them all.
// lines maps each setting the file sets to the line of its key.
func applyYAMLAll(c *Config, path string, data []byte) (errs []*Error, lines map[string]int) {
	lines = map[string]int{}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, lines
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			n, _ := strconv.Atoi(m[1])
			return []*Error{{Source: path + ":" + m[1], Err: errors.New("YAML syntax: " + m[2]), line: n}}, lines
		}
		return []*Error{{Source: path, Err: err}}, lines
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, lines // only comments
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return []*Error{{Source: fmt.Sprintf("%s:%d", path, root.Line), Err: errors.New("want a mapping of setting: value"), line: root.Line}}, lines
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		src := fmt.Sprintf("%s:%d", path, k.Line)
		s := lookup(k.Value)
		if k.Kind != yaml.ScalarNode || s == nil || s.Name == "config" {
			msg := fmt.Sprintf("unknown setting %q", k.Value)
			if k.Kind == yaml.ScalarNode && k.Value == "config" {
				msg += " (a config file cannot name another; use --config or DAVMAIL_CONFIG)"
			} else if alt := suggest(k.Value); alt != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", alt)
			}
			errs = append(errs, &Error{Source: src, Err: errors.New(msg), line: k.Line})
			continue
		}
		if prev, dup := lines[s.Name]; dup {
			errs = append(errs, &Error{Source: src, Setting: s.Name, Err: fmt.Errorf("set again (first on line %d)", prev), line: k.Line})
			continue
		}
		lines[s.Name] = k.Line
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			errs = append(errs, &Error{Source: fmt.Sprintf("%s:%d", path, v.Line), Setting: s.Name, Err: errors.New("want a plain value"), line: v.Line})
			continue
		}
		if err := s.set(c, v.Value); err != nil {
			errs = append(errs, &Error{Source: fmt.Sprintf("%s:%d", path, v.Line), Setting: s.Name, Err: err, line: v.Line})
		}
	}
	return errs, lines
}

// suggest returns the setting a mistyped key most likely meant: the same
// name in another case or with underscores, or one within two edits
// ("max-mesage-size"); "" when nothing is close.
func suggest(key string) string {
	norm := strings.ReplaceAll(strings.ToLower(key), "_", "-")
	if s := lookup(norm); s != nil && s.Name != "config" {
		return s.Name
	}
	// Two edits catch a dropped, doubled or swapped letter without
	// matching unrelated short names.
	const maxEdits = 2
	best, bestD := "", maxEdits+1
	for _, s := range settings {
		if s.Name == "config" {
			continue
		}
		if d := editDistance(norm, s.Name); d < bestD {
			best, bestD = s.Name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (bytes; setting
// names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Check validates the config file at path as `davmail serve --config
// path` would read it, without flags or environment, and returns every
// problem (nil when the file is good): YAML syntax, unknown or repeated
// keys, bad values, and settings that are out of range or do not fit
// together. Each *Error's Source is "path:line" when the problem has a
// line in the file.
func Check(path string) []*Error {
	f, err := os.Open(path)
	if err != nil {
		return []*Error{{Source: path, Err: err}}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return []*Error{{Source: path, Err: err}}
	}
	if len(data) > maxConfigFile {
		return []*Error{{Source: path, Err: fmt.Errorf("larger than %s", limits.FormatSize(maxConfigFile))}}
	}
	c := Defaults()
	c.MaildirRoot, c.Users = "", "" // derived again, as Load does
	errs, lines := applyYAMLAll(&c, path, data)
	c.derive()
	bad := map[string]bool{} // settings already reported: no second error
	for _, e := range errs {
		bad[e.Setting] = true
	}
	for _, p := range c.Problems() {
		if bad[p.Setting] {
			continue
		}
		p.Source = path
		if l, ok := lines[p.Setting]; ok {
			p.Source = fmt.Sprintf("%s:%d", path, l)
		}
		p.line = lines[p.Setting]
		errs = append(errs, p)
	}
	// File order; problems with no line in the file (a setting it lacks)
	// last.
	slices.SortStableFunc(errs, func(a, b *Error) int {
		la, lb := a.line, b.line
		if la == 0 {
			la = math.MaxInt
		}
		if lb == 0 {
			lb = math.MaxInt
		}
		return cmp.Compare(la, lb)
	})
	return errs
}

// Explain describes a setting for an error report: its flag, what it is,
// its default, and its environment variable; "" for an unknown name.
func Explain(name string) string {
	s := lookup(name)
	if s == nil {
		return ""
	}
	text := fmt.Sprintf("%s: %s (default %s", s.Name, s.Help, s.shownDefault())
	if s.kind == kindEnum {
		text += "; one of " + strings.Join(s.choices, ", ")
	}
	return text + "; environment " + s.Env + ")"
}

// Validate checks the ranges of the settings and how they fit together.
// It returns the first problem; Problems returns them all.
func (c Config) Validate() error {
	if errs := c.Problems(); len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// Problems returns every problem Validate would report, each an *Error
// naming its setting, in the order of the settings table.
func (c Config) Problems() []*Error {
	var errs []*Error
	bad := func(name, format string, args ...any) {
		errs = append(errs, &Error{Source: "config", Setting: name, Err: fmt.Errorf(format, args...)})
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "want host:port, e.g. 127.0.0.1:8080 or :8080: %v", err)
	}
	if c.Data == "" {
		bad("data", "must not be empty")
	}
	for _, p := range []struct {
		name string
		v    int64
	}{
		{"max-message-size", c.MaxMessageSize}, {"max-response-size", c.MaxResponseSize},
		{"max-xml-bytes", c.MaxXMLBytes}, {"max-xml-elements", int64(c.MaxXMLElements)},
		{"max-xml-depth", int64(c.MaxXMLDepth)},
	} {
		if p.v <= 0 {
			bad(p.name, "must be positive")
		}
	}
	if c.MaxDepthInfinity <= 0 && c.MaxDepthInfinity != -1 {
		bad("max-depth-infinity", "must be positive, or -1 to refuse Depth: infinity")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		if c.TLSCert == "" {
			bad("tls-cert", "tls-key is set but tls-cert is not: HTTPS needs both")
		} else {
			bad("tls-key", "tls-cert is set but tls-key is not: HTTPS needs both")
		}
	}
	if c.HTTPRedirectListen != "" {
		if _, _, err := net.SplitHostPort(c.HTTPRedirectListen); err != nil {
			bad("http-redirect-listen", "want host:port, e.g. :80: %v", err)
		} else if c.TLSCert == "" {
			bad("http-redirect-listen", "redirects to HTTPS, which needs tls-cert and tls-key")
		}
	}
	if _, err := c.TrustedProxyPrefixes(); err != nil {
		bad("trusted-proxies", "%v", err)
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			bad("metrics-listen", "want host:port, e.g. 127.0.0.1:9090: %v", err)
		}
	}
	if c.ReadHeaderTimeout <= 0 {
		bad("read-header-timeout", "must be positive: without it a client can hold a connection forever by sending headers slowly")
	}
	if c.IdleTimeout <= 0 {
		bad("idle-timeout", "must be positive")
	}
	if c.ReadTimeout < 0 {
		bad("read-timeout", "must not be negative (0 means none)")
	}
	if c.ShutdownGrace <= 0 {
		bad("shutdown-grace", "must be positive: it is how long downloads in flight get to finish")
	}
	if c.InitialAdminPassword != "" && !auth.ValidName(c.InitialAdminUser) {
		bad("initial-admin-user", "invalid user name %q: want 1-64 characters of A-Z a-z 0-9 . _ @ + -, not starting with a dot", c.InitialAdminUser)
	}
	return errs
}

// TrustedProxyPrefixes parses TrustedProxies: IP addresses and CIDR
// prefixes separated by commas or spaces. A bare address is a /32 (or
// /128). IPv4-mapped IPv6 forms are unmapped, as net/http's RemoteAddr is.
func (c Config) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(c.TrustedProxies, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("invalid CIDR %q: want e.g. 10.0.0.0/8", f)
			}
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("invalid address %q: want an IP or a CIDR such as 10.0.0.0/8", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// parseBool accepts the strconv forms and yes/no/on/off, common in
// environment files.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "t", "true", "yes", "y", "on":
		return true, nil
	case "0", "f", "false", "no", "n", "off", "":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q: want true or false", v)
}

func parseInt(v string, minusOne bool) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil || (n < 0 && !(minusOne && n == -1)) {
		return 0, fmt.Errorf("invalid number %q", v)
	}
	return n, nil
}

func parseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q: want e.g. 10s, 2m, 1h30m, or 0", v)
	}
	return d, nil
}

// sizeString writes n the way ParseSize reads it, in the largest exact
// binary unit ("25MiB"), for defaults in the help and docs.
func sizeString(n int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.m && n%u.m == 0 {
			return strconv.FormatInt(n/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}
