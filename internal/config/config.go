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
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

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

	// Sending through the Exchange submission URI (internal/submit).
	Relay         string // host:port; "" turns sending off
	RelayTLS      string // none, starttls, tls
	RelayUser     string
	RelayPassword string // never logged
	MailDomain    string // addresses are <user>@<MailDomain>

	LogLevel  string // trace, debug, info, warn, error
	LogFormat string // auto, json, console

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
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return &Error{Source: path, Err: err}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // only comments
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return &Error{Source: fmt.Sprintf("%s:%d", path, root.Line), Err: errors.New("want a mapping of setting: value")}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		src := fmt.Sprintf("%s:%d", path, k.Line)
		s := lookup(k.Value)
		if k.Kind != yaml.ScalarNode || s == nil || s.Name == "config" {
			msg := fmt.Sprintf("unknown setting %q", k.Value)
			if alt := lookup(strings.ReplaceAll(strings.ToLower(k.Value), "_", "-")); alt != nil && alt.Name != "config" {
				msg += fmt.Sprintf(" (did you mean %q?)", alt.Name)
			}
			return &Error{Source: src, Err: errors.New(msg)}
		}
		if prev, dup := seen[s.Name]; dup {
			return &Error{Source: src, Setting: s.Name, Err: fmt.Errorf("set again (first on line %d)", prev)}
		}
		seen[s.Name] = k.Line
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			return &Error{Source: fmt.Sprintf("%s:%d", path, v.Line), Setting: s.Name, Err: errors.New("want a plain value")}
		}
		if err := s.set(c, v.Value); err != nil {
			return &Error{Source: fmt.Sprintf("%s:%d", path, v.Line), Setting: s.Name, Err: err}
		}
	}
	return nil
}

// Validate checks the ranges of the settings.
func (c Config) Validate() error {
	bad := func(name, format string, args ...any) error {
		return &Error{Source: "config", Setting: name, Err: fmt.Errorf(format, args...)}
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return bad("listen", "want host:port, e.g. 127.0.0.1:8080 or :8080: %v", err)
	}
	if c.Data == "" {
		return bad("data", "must not be empty")
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
			return bad(p.name, "must be positive")
		}
	}
	if c.MaxDepthInfinity <= 0 && c.MaxDepthInfinity != -1 {
		return bad("max-depth-infinity", "must be positive, or -1 to refuse Depth: infinity")
	}
	if c.ReadHeaderTimeout <= 0 {
		return bad("read-header-timeout", "must be positive: without it a client can hold a connection forever by sending headers slowly")
	}
	if c.IdleTimeout <= 0 {
		return bad("idle-timeout", "must be positive")
	}
	if c.ReadTimeout < 0 {
		return bad("read-timeout", "must not be negative (0 means none)")
	}
	return nil
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
