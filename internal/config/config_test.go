package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/davmail/davmail/dav"
	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox/imap"
	"github.com/davmail/davmail/mailbox/maildir"
)

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "davmail.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, args []string, getenv func(string) (string, bool)) (Config, error) {
	t.Helper()
	var out bytes.Buffer
	c, err := Load("davmail serve", args, getenv, &out)
	return c, err
}

func TestDefaults(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Listen: "127.0.0.1:8080", Data: "./davmail-data",
		MaildirRoot: filepath.Join("davmail-data", "maildir"), Users: filepath.Join("davmail-data", "users"),
		MaxMessageSize: 25 << 20, MaxResponseSize: 50 << 20,
		MaxXMLBytes: dav.DefaultMaxXMLBytes, MaxXMLElements: dav.DefaultMaxXMLElements,
		MaxXMLDepth: dav.DefaultMaxXMLDepth, MaxDepthInfinity: dav.DefaultMaxDepthInfinity, IndexMemoryMessages: maildir.DefaultMaxOpenMessages,
		RelayTLS: "starttls", MailDomain: "localhost",
		LogLevel: "info", LogFormat: "auto",
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, ReadTimeout: 0,
		ShutdownGrace: 30 * time.Second, InitialAdminUser: "admin",
		UserTimeBudget: limits.DefaultUserBudget, UserMaxConcurrent: limits.DefaultUserConcurrent,
		UserRate: limits.DefaultUserRate, IPMaxConcurrent: limits.DefaultIPConcurrent, IPRate: int(limits.DefaultIPRate),
		IMAPTLS: "starttls", IMAPMaxConns: imap.DefaultMaxConnsPerUser, IMAPIdleTimeout: imap.DefaultIdleTimeout, MaxInFlight: limits.DefaultMaxInFlight,
	}
	if c != want {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if d := Defaults(); d != want {
		t.Errorf("Defaults() = %+v", d)
	}
	if got := c.IndexDir(); got != filepath.Join("davmail-data", "index") {
		t.Errorf("IndexDir = %q", got)
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, `
# a comment
listen: "0.0.0.0:1"
max-message-size: 1MiB
max-xml-depth: 10
log-level: debug
idle-timeout: 1m
`)
	getenv := env(
		"DAVMAIL_CONFIG", file,
		"DAVMAIL_MAX_MESSAGE_SIZE", "2MiB",
		"DAVMAIL_LISTEN", "127.0.0.2:2",
		"DAVMAIL_DEMO", "yes",
		"DAVMAIL_DATA", "/srv/dm",
	)
	c, err := load(t, []string{"--listen", "127.0.0.3:3", "-max-xml-elements=7"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	for _, chk := range []struct {
		name      string
		got, want any
	}{
		{"listen: flag over env over file", c.Listen, "127.0.0.3:3"},
		{"max-message-size: env over file", c.MaxMessageSize, int64(2 << 20)},
		{"max-xml-depth: file over default", c.MaxXMLDepth, 10},
		{"max-xml-elements: flag", c.MaxXMLElements, 7},
		{"log-level: file", c.LogLevel, "debug"},
		{"idle-timeout: file", c.IdleTimeout, time.Minute},
		{"demo: env", c.Demo, true},
		{"max-response-size: default", c.MaxResponseSize, int64(50 << 20)},
		{"maildir-root derived from env data", c.MaildirRoot, "/srv/dm/maildir"},
		{"users derived from env data", c.Users, "/srv/dm/users"},
		{"config file recorded", c.ConfigFile, file},
	} {
		if chk.got != chk.want {
			t.Errorf("%s: got %v, want %v", chk.name, chk.got, chk.want)
		}
	}

	// --config beats DAVMAIL_CONFIG; explicit maildir-root beats derivation.
	other := writeFile(t, "max-message-size: 3MiB\nmaildir-root: /var/vmail\n")
	c, err = load(t, []string{"--config", other, "--demo"}, env("DAVMAIL_CONFIG", file))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxMessageSize != 3<<20 || c.MaildirRoot != "/var/vmail" || c.ConfigFile != other || !c.Demo {
		t.Errorf("--config: %+v", c)
	}
	// --demo=false beats DAVMAIL_DEMO.
	c, err = load(t, []string{"--demo=false"}, env("DAVMAIL_DEMO", "1"))
	if err != nil || c.Demo {
		t.Errorf("--demo=false: %v %v", c.Demo, err)
	}
}

func TestValues(t *testing.T) {
	good := func(args []string, check func(Config) bool) {
		t.Helper()
		c, err := load(t, args, nil)
		if err != nil {
			t.Errorf("%v: %v", args, err)
			return
		}
		if !check(c) {
			t.Errorf("%v: got %+v", args, c)
		}
	}
	good([]string{"--max-message-size", "26214400"}, func(c Config) bool { return c.MaxMessageSize == 25<<20 })
	good([]string{"--max-message-size", "1GiB"}, func(c Config) bool { return c.MaxMessageSize == 1<<30 })
	good([]string{"--max-message-size", "10MB"}, func(c Config) bool { return c.MaxMessageSize == 10e6 })
	good([]string{"--max-depth-infinity", "-1"}, func(c Config) bool { return c.MaxDepthInfinity == -1 })
	good([]string{"--read-timeout", "0"}, func(c Config) bool { return c.ReadTimeout == 0 })
	good([]string{"--read-timeout", "5m"}, func(c Config) bool { return c.ReadTimeout == 5*time.Minute })
	good([]string{"--log-format", "JSON"}, func(c Config) bool { return c.LogFormat == "json" })
	good([]string{"--listen", ":0"}, func(c Config) bool { return c.Listen == ":0" })
	good([]string{"--listen", "[::1]:8080"}, func(c Config) bool { return c.Listen == "[::1]:8080" })
}

func TestErrors(t *testing.T) {
	bad := func(name string, args []string, getenv func(string) (string, bool), want ...string) {
		t.Helper()
		_, err := load(t, args, getenv)
		if err == nil {
			t.Errorf("%s: no error", name)
			return
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", name, err, w)
			}
		}
	}
	bad("bad size flag", []string{"--max-message-size", "lots"}, nil, "flag --max-message-size", "invalid size")
	bad("negative size", []string{"--max-message-size", "-1"}, nil, "invalid size")
	bad("zero size", []string{"--max-xml-bytes", "0"}, nil, "max-xml-bytes", "positive")
	bad("bad int", []string{"--max-xml-depth", "deep"}, nil, "invalid number")
	bad("-1 where not allowed", []string{"--max-xml-depth", "-1"}, nil, "invalid number")
	bad("zero depth-infinity", []string{"--max-depth-infinity", "0"}, nil, "-1 to refuse")
	bad("bad duration", []string{"--idle-timeout", "10"}, nil, "invalid duration")
	bad("zero header timeout", []string{"--read-header-timeout", "0s"}, nil, "read-header-timeout", "slowly")
	bad("bad enum", []string{"--log-level", "loud"}, nil, "want one of trace, debug, info, warn, error")
	bad("bad listen", []string{"--listen", "8080"}, nil, "listen", "host:port")
	bad("unknown flag", []string{"--max-mesage-size", "1"}, nil, "max-mesage-size")
	bad("positional", []string{"extra"}, nil, `unexpected argument "extra"`)
	bad("bad env", nil, env("DAVMAIL_MAX_RESPONSE_SIZE", "big"), "environment DAVMAIL_MAX_RESPONSE_SIZE")
	bad("bad env bool", nil, env("DAVMAIL_DEMO", "maybe"), "DAVMAIL_DEMO", "invalid boolean")
	bad("missing file", []string{"--config", filepath.Join(t.TempDir(), "nope.yaml")}, nil, "flag --config", "no such file")
	bad("missing file env", nil, env("DAVMAIL_CONFIG", filepath.Join(t.TempDir(), "nope.yaml")), "environment DAVMAIL_CONFIG")

	f := func(text string) []string { return []string{"--config", writeFile(t, text)} }
	bad("unknown key", f("listen: ':1'\n\nmax-mesage-size: 1\n"), nil, "davmail.yaml:3", `unknown setting "max-mesage-size"`)
	bad("snake key", f("max_message_size: 1MiB\n"), nil, ":1:", `did you mean "max-message-size"`)
	bad("config key in file", f("config: other.yaml\n"), nil, ":1:", "unknown setting")
	bad("bad value line", f("# x\nlisten: ':1'\nmax-xml-depth: many\n"), nil, "davmail.yaml:3", "max-xml-depth", "invalid number")
	bad("duplicate key", f("listen: ':1'\nlisten: ':2'\n"), nil, ":2:", "first on line 1")
	bad("null value", f("listen:\n"), nil, ":1:", "listen", "plain value")
	bad("list value", f("listen:\n  - a\n  - b\n"), nil, ":2:", "plain value")
	bad("mapping value", f("listen: {a: b}\n"), nil, "plain value")
	bad("not a mapping", f("- listen\n"), nil, ":1:", "mapping")
	bad("yaml syntax", f("listen: [\n"), nil, "davmail.yaml")
	bad("file value checked", f("idle-timeout: 0s\n"), nil, "idle-timeout", "positive")

	var ce *Error
	_, err := load(t, []string{"--max-xml-depth", "x"}, nil)
	if !errors.As(err, &ce) || ce.Source != "flag --max-xml-depth" {
		t.Errorf("error type: %#v", err)
	}
}

func TestEmptyFile(t *testing.T) {
	for _, text := range []string{"", "\n\n", "# only a comment\n"} {
		c, err := load(t, []string{"--config", writeFile(t, text)}, nil)
		if err != nil {
			t.Errorf("%q: %v", text, err)
		}
		if c.Listen != "127.0.0.1:8080" {
			t.Errorf("%q: listen %q", text, c.Listen)
		}
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := Load("davmail serve", []string{"--help"}, nil, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	help := out.String()
	for _, s := range settings {
		if !strings.Contains(help, "--"+s.Name) || !strings.Contains(help, s.Env) {
			t.Errorf("help lacks %s / %s", s.Name, s.Env)
		}
	}
	if !strings.Contains(help, "flag wins over the") {
		t.Error("help does not explain precedence")
	}
}

func TestTable(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range settings {
		if seen[s.Name] {
			t.Errorf("setting %s declared twice", s.Name)
		}
		seen[s.Name] = true
		if s.Help == "" {
			t.Errorf("setting %s has no help", s.Name)
		}
		if s.Default == "" && s.Shown == "" {
			t.Errorf("setting %s has no default and no shown default", s.Name)
		}
		if s.Env != envName(s.Name) || !strings.HasPrefix(s.Env, "DAVMAIL_") {
			t.Errorf("setting %s: env %s", s.Name, s.Env)
		}
		if s.Default != "" && s.kind == kindSize {
			// Defaults must survive a print-and-parse round trip, since
			// the docs show them as values to copy.
			var c Config
			if err := s.set(&c, s.Default); err != nil {
				t.Errorf("setting %s: default %q does not parse: %v", s.Name, s.Default, err)
			}
		}
	}
}

// TestDocUpToDate fails when docs/configuration.md does not match the
// table. Regenerate it with `go generate ./internal/config`.
func TestDocUpToDate(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "configuration.md")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go generate ./internal/config`)", err)
	}
	if string(got) != Markdown() {
		t.Errorf("%s is out of date: run `go generate ./internal/config`", path)
	}
	// The example config in the doc must load.
	doc := Markdown()
	i := strings.Index(doc, "```yaml\n")
	j := strings.LastIndex(doc, "```\n")
	if i < 0 || j <= i {
		t.Fatal("no example config in the doc")
	}
	c, err := load(t, []string{"--config", writeFile(t, doc[i+len("```yaml\n"):j])}, nil)
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	c.ConfigFile = ""
	if c != Defaults() {
		t.Errorf("example config differs from the defaults: %+v", c)
	}
}

func FuzzYAML(f *testing.F) {
	f.Add("listen: ':1'\nmax-message-size: 1MiB\n")
	f.Add("- a\n")
	f.Add("a: &x [*x]\n")
	f.Add("max-xml-depth: 10\nmax-xml-depth: 11\n")
	f.Add("demo: yes\nread-timeout: 1h\n")
	f.Fuzz(func(t *testing.T, text string) {
		c := Defaults()
		err := applyYAML(&c, "fuzz.yaml", []byte(text))
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error of type %T: %v", err, err)
			}
		}
	})
}
