package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCheckReportsEveryError: one file with several mistakes gets one
// error per mistake, each with its line, in file order, and the good
// settings around them do not count.
func TestCheckReportsEveryError(t *testing.T) {
	path := writeFile(t, `# davmail config
listen: ":8080"
max-mesage-size: 10MiB
max_response_size: 50MiB
idle-timeout: soon
log-level: loud
tls-cert: /etc/davmail/cert.pem
listen: ":9090"
metrics-listen: 9090
read-header-timeout: 0s
trusted-proxies: 10.0.0.0/8, not-an-ip
shutdown-grace: 45s
`)
	errs := Check(path)
	type want struct {
		line    string
		setting string
		text    string
	}
	wants := []want{
		{":3", "", `unknown setting "max-mesage-size" (did you mean "max-message-size"?)`},
		{":4", "", `did you mean "max-response-size"`},
		{":5", "idle-timeout", `invalid duration "soon"`},
		{":6", "log-level", "want one of trace, debug, info, warn, error"},
		{":8", "listen", "set again (first on line 2)"},
		// Range and consistency checks are placed on the line that set
		// the setting, or on the file (last) when it set none.
		{":9", "metrics-listen", "host:port"},
		{":10", "read-header-timeout", "must be positive"},
		{":11", "trusted-proxies", `invalid address "not-an-ip"`},
		{"", "tls-key", "tls-cert is set but tls-key is not"},
	}
	if len(errs) != len(wants) {
		var got []string
		for _, e := range errs {
			got = append(got, e.Error())
		}
		t.Fatalf("got %d errors, want %d:\n%s", len(errs), len(wants), strings.Join(got, "\n"))
	}
	for i, w := range wants {
		e := errs[i]
		if e.Source != path+w.line {
			t.Errorf("error %d (%v): source %q, want %q", i, e, e.Source, path+w.line)
		}
		if e.Setting != w.setting {
			t.Errorf("error %d (%v): setting %q, want %q", i, e, e.Setting, w.setting)
		}
		if !strings.Contains(e.Error(), w.text) {
			t.Errorf("error %d: %q does not contain %q", i, e, w.text)
		}
	}
	// Explain gives the help for a named setting.
	if x := Explain("idle-timeout"); !strings.Contains(x, "DAVMAIL_IDLE_TIMEOUT") || !strings.Contains(x, "default 120s") {
		t.Errorf("Explain(idle-timeout) = %q", x)
	}
	if x := Explain("log-level"); !strings.Contains(x, "one of trace") {
		t.Errorf("Explain(log-level) = %q", x)
	}
	if Explain("nope") != "" {
		t.Error("Explain of an unknown setting is not empty")
	}
}

func TestCheckGoodAndBroken(t *testing.T) {
	good := writeFile(t, "listen: ':8443'\ntls-cert: c.pem\ntls-key: k.pem\nhttp-redirect-listen: ':8080'\nshutdown-grace: 1m\n")
	if errs := Check(good); len(errs) != 0 {
		t.Errorf("good file: %v", errs)
	}
	for _, tc := range []struct{ name, text, source, want string }{
		{"syntax", "listen: ':1'\nmax-xml-depth: [\n", ":2", "YAML syntax"},
		{"not a mapping", "- a\n", ":1", "mapping"},
		{"config key", "config: x.yaml\n", ":1", "cannot name another"},
		{"redirect without TLS", "http-redirect-listen: ':80'\n", ":1", "needs tls-cert"},
		{"bad admin name", "initial-admin-password: pw\ninitial-admin-user: ../root\n", ":2", "invalid user name"},
	} {
		errs := Check(writeFile(t, tc.text))
		if len(errs) != 1 {
			t.Errorf("%s: %d errors %v, want 1", tc.name, len(errs), errs)
			continue
		}
		if !strings.HasSuffix(errs[0].Source, tc.source) || !strings.Contains(errs[0].Error(), tc.want) {
			t.Errorf("%s: %v, want %s and %q", tc.name, errs[0], tc.source, tc.want)
		}
	}
	if errs := Check(filepath.Join(t.TempDir(), "none.yaml")); len(errs) != 1 || !os.IsNotExist(errs[0].Err) {
		t.Errorf("missing file: %v", errs)
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, make([]byte, maxConfigFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if errs := Check(big); len(errs) != 1 || !strings.Contains(errs[0].Error(), "larger than") {
		t.Errorf("big file: %v", errs)
	}
}

func TestSuggest(t *testing.T) {
	for in, want := range map[string]string{
		"max-mesage-size":  "max-message-size",
		"MAX_MESSAGE_SIZE": "max-message-size",
		"tls-crt":          "tls-cert",
		"listn":            "listen",
		"frobnicate":       "",
		"config":           "", // never suggested: not allowed in a file
	} {
		if got := suggest(in); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDeploySettings(t *testing.T) {
	c, err := load(t, []string{"--tls-cert", "c.pem", "--tls-key", "k.pem", "--http-redirect-listen", ":80",
		"--trusted-proxies", "127.0.0.1, 10.0.0.0/8 ::ffff:192.0.2.0/120 2001:db8::/32",
		"--metrics-listen", "127.0.0.1:9090", "--shutdown-grace", "1m"},
		env("DAVMAIL_INITIAL_ADMIN_PASSWORD", "s3cret", "DAVMAIL_INITIAL_ADMIN_USER", "root"))
	if err != nil {
		t.Fatal(err)
	}
	if c.TLSCert != "c.pem" || c.TLSKey != "k.pem" || c.HTTPRedirectListen != ":80" || c.MetricsListen != "127.0.0.1:9090" ||
		c.ShutdownGrace != time.Minute || c.InitialAdminUser != "root" || c.InitialAdminPassword != "s3cret" {
		t.Errorf("settings: %+v", c)
	}
	ps, err := c.TrustedProxyPrefixes()
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32"),
	}
	if !slices.Equal(ps, want) {
		t.Errorf("prefixes %v, want %v", ps, want)
	}
	for _, args := range [][]string{
		{"--tls-key", "k.pem"},
		{"--http-redirect-listen", "80", "--tls-cert", "c", "--tls-key", "k"},
		{"--trusted-proxies", "10.0.0.0/33"},
		{"--shutdown-grace", "0s"},
		{"--metrics-listen", "localhost"},
	} {
		if _, err := load(t, args, nil); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
