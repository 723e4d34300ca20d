package config

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/davmail/davmail/dav"
	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/mailbox/imap"
	"github.com/davmail/davmail/mailbox/maildir"
)

type kind int

const (
	kindString kind = iota
	kindSize        // limits.ParseSize: "25MiB", "1GiB", bytes
	kindInt
	kindDuration
	kindBool
	kindEnum
)

// setting is one row of the table.
type setting struct {
	Name    string // flag name and YAML key
	Env     string // environment variable, derived from Name
	Default string // as the user would write it; "" for derived defaults
	Shown   string // default as shown in help when Default is "" or needs words
	Help    string
	Doc     string // longer explanation for docs/configuration.md
	kind    kind
	choices []string // kindEnum
	// minusOne allows -1 (a documented special value) for numbers.
	minusOne bool
	ptr      func(*Config) any
}

// settings is the single table every source and document derives from.
var settings = withEnv([]setting{
	{
		Name: "config", kind: kindString,
		Shown: "none",
		Help:  "YAML file with settings (keys are the flag names)",
		Doc:   "A YAML mapping of setting names to values, e.g. `max-message-size: 50MiB`. Unknown keys are an error naming the line. Only as a flag or environment variable.",
		ptr:   func(c *Config) any { return &c.ConfigFile },
	},
	{
		Name: "listen", kind: kindString, Default: "127.0.0.1:8080",
		Help: "address to listen on (host:port; port 0 picks a free one)",
		Doc:  "The default listens on loopback only: put a TLS-terminating reverse proxy in front, or set `:8080` to listen on every interface. The actual address is logged at start (field `addr`).",
		ptr:  func(c *Config) any { return &c.Listen },
	},
	{
		Name: "data", kind: kindString, Default: "./davmail-data",
		Help: "data directory: the index, and by default the users file and the maildirs",
		Doc:  "The mailbox index lives in `<data>/index`.",
		ptr:  func(c *Config) any { return &c.Data },
	},
	{
		Name: "maildir-root", kind: kindString, Shown: "<data>/maildir",
		Help: "directory holding <user>/Maildir (Maildir++, Dovecot layout)",
		Doc:  "Point it at Dovecot's mail root (`mail_location = maildir:~/Maildir` with homes under one directory) to serve existing mailboxes.",
		ptr:  func(c *Config) any { return &c.MaildirRoot },
	},
	{
		Name: "users", kind: kindString, Shown: "<data>/users",
		Help: "users file (htpasswd-style name:bcrypt-hash[:admin] lines)",
		Doc:  "Manage it with `davmail user add|del|list` or `htpasswd -B`. Changes are picked up within a second, without a restart.",
		ptr:  func(c *Config) any { return &c.Users },
	},
	{
		Name: "max-message-size", kind: kindSize, Default: sizeString(dav.DefaultMaxMessageSize),
		Help: "largest message a client may store (PUT, COPY from outside)",
		Doc:  "Larger uploads are refused with 413 naming this limit. Messages already in the Maildir may be larger; they are still served up to max-response-size.",
		ptr:  func(c *Config) any { return &c.MaxMessageSize },
	},
	{
		Name: "max-response-size", kind: kindSize, Default: sizeString(dav.DefaultMaxResponseSize),
		Help: "largest response body (Exchange's MaximumResponseSizeInBytes)",
		Doc:  "Keep it at least max-message-size, or stored messages cannot be fetched whole.",
		ptr:  func(c *Config) any { return &c.MaxResponseSize },
	},
	{
		Name: "max-xml-bytes", kind: kindSize, Default: sizeString(dav.DefaultMaxXMLBytes),
		Help: "largest XML request body (PROPFIND, PROPPATCH, SEARCH…)",
		ptr:  func(c *Config) any { return &c.MaxXMLBytes },
	},
	{
		Name: "max-xml-elements", kind: kindInt, Default: fmt.Sprint(dav.DefaultMaxXMLElements),
		Help: "most XML elements in one request body",
		ptr:  func(c *Config) any { return &c.MaxXMLElements },
	},
	{
		Name: "max-xml-depth", kind: kindInt, Default: fmt.Sprint(dav.DefaultMaxXMLDepth),
		Help: "deepest XML nesting in one request body",
		ptr:  func(c *Config) any { return &c.MaxXMLDepth },
	},
	{
		Name: "max-depth-infinity", kind: kindInt, Default: fmt.Sprint(dav.DefaultMaxDepthInfinity), minusOne: true,
		Help: "most responses to a Depth: infinity PROPFIND; -1 refuses Depth: infinity",
		Doc:  "Over the cap the request is refused with the RFC 4918 §9.1 `propfind-finite-depth` precondition, and clients fall back to Depth: 1.",
		ptr:  func(c *Config) any { return &c.MaxDepthInfinity },
	},
	{
		Name: "index-memory-messages", kind: kindInt, Default: fmt.Sprint(maildir.DefaultMaxOpenMessages),
		Help: "messages whose index entries the mailboxes keep in memory, all users together",
		Doc:  "About 600 bytes a message: the default is about 1.2 GiB. Past it the least recently used idle mailboxes are unloaded and reload from their index file on next use (about 0.1 s per 100,000 messages, nothing parsed again); the mailbox just used always stays, however large. Both backends; gauge `davmail_index_messages_in_memory`.",
		ptr:  func(c *Config) any { return &c.IndexMemoryMessages },
	},
	{
		Name: "imap-upstream", kind: kindString, Shown: "none (Maildir backend)",
		Help: "HOST:PORT of an IMAP server (Dovecot) to front instead of the Maildir",
		Doc:  "Users then log in upstream with their own passwords (held in memory only, while their sessions need them); the users file only names admins. Listings, MIME structures, stable IDs and dead properties are cached in the index under `<data>/index` and kept fresh with CONDSTORE. See docs/imap-backend.md.",
		ptr:  func(c *Config) any { return &c.IMAPUpstream },
	},
	{
		Name: "imap-tls", kind: kindEnum, Default: "starttls", choices: []string{"none", "starttls", "tls"},
		Help: "TLS to the IMAP upstream: none (only on loopback or a private link), starttls, or tls (implicit, port 993)",
		Doc:  "The certificate is verified against the system roots.",
		ptr:  func(c *Config) any { return &c.IMAPTLS },
	},
	{
		Name: "imap-max-conns", kind: kindInt, Default: fmt.Sprint(imap.DefaultMaxConnsPerUser),
		Help: "upstream IMAP connections per user, idle and in use",
		Doc:  "One serves the user's listings and writes, the others downloads.",
		ptr:  func(c *Config) any { return &c.IMAPMaxConns },
	},
	{
		Name: "imap-idle-timeout", kind: kindDuration, Default: imap.DefaultIdleTimeout.String(),
		Help: "close upstream IMAP connections unused this long",
		Doc:  "Well under the 30 minutes after which RFC 9051 §5.4 lets a server close an idle connection.",
		ptr:  func(c *Config) any { return &c.IMAPIdleTimeout },
	},
	{
		Name: "attachment-folders", kind: kindBool, Default: "false",
		Help: "show a read-only <message>.attachments/ collection beside each message with attachments",
		Doc:  "For WebDAV clients that can only browse. Off by default: a mount then sees exactly the messages, and copies stay byte-exact. Attachments are always reachable at `<message URL>/<name>` (the hrefs X-MS-ENUMATTS returns).",
		ptr:  func(c *Config) any { return &c.AttachmentFolders },
	},
	{
		Name: "range-over-response-cap", kind: kindBool, Default: "false",
		Help: "let a Range request fetch a piece (within max-response-size) of an attachment larger than max-response-size",
		Doc:  "Off by default: an attachment over max-response-size is refused whole, as Exchange's MaximumResponseSizeInBytes did. On, a client can download it in pieces no larger than the cap; max-message-size still refuses parts above it.",
		ptr:  func(c *Config) any { return &c.RangeOverResponseCap },
	},
	{
		Name: "user-time-budget", kind: kindDuration, Default: limits.DefaultUserBudget.String(),
		Help: "handler time one user may use per fair-share window (1 minute); over it: 429 with Retry-After",
		Doc:  "Exchange's EASPercentTimeInCAS idea: a user whose requests keep the server busy for more than this per minute waits. 4 minutes per minute is two busy cores' worth, so it only stops a user who would starve the others. See docs/limits.md.",
		ptr:  func(c *Config) any { return &c.UserTimeBudget },
	},
	{
		Name: "user-max-concurrent", kind: kindInt, Default: fmt.Sprint(limits.DefaultUserConcurrent),
		Help: "requests one user may have in flight; more: 429",
		Doc:  "Real clients keep 2–6 connections; 16 leaves room for several devices of one user.",
		ptr:  func(c *Config) any { return &c.UserMaxConcurrent },
	},
	{
		Name: "user-rate", kind: kindInt, Default: fmt.Sprint(limits.DefaultUserRate),
		Help: "sustained requests per second one user may send (bursts of 10× allowed); more: 429",
		Doc:  "DavMail sends a PROPFIND before every IMAP command: a busy IMAP client is tens of requests per second.",
		ptr:  func(c *Config) any { return &c.UserRate },
	},
	{
		Name: "ip-max-concurrent", kind: kindInt, Default: fmt.Sprint(limits.DefaultIPConcurrent),
		Help: "requests one client address (IPv6: its /64) may have in flight; more: 429",
		Doc:  "Bounds unauthenticated floods and many users behind one address alike; raise it for a large NAT.",
		ptr:  func(c *Config) any { return &c.IPMaxConcurrent },
	},
	{
		Name: "ip-rate", kind: kindInt, Default: fmt.Sprint(int(limits.DefaultIPRate)),
		Help: "sustained requests per second from one client address (bursts of 10× allowed); more: 429",
		Doc:  "Four users' worth by default; raise it when many users share one address (a NAT, a proxy not listed in trusted-proxies, a load test on loopback).",
		ptr:  func(c *Config) any { return &c.IPRate },
	},
	{
		Name: "max-in-flight", kind: kindInt, Default: fmt.Sprint(limits.DefaultMaxInFlight),
		Help: "requests the whole server may have in flight; more: 503 with Retry-After",
		Doc:  "The last line of defence: past it the server sheds load instead of queueing it.",
		ptr:  func(c *Config) any { return &c.MaxInFlight },
	},
	{
		Name: "relay", kind: kindString, Shown: "none (sending off)",
		Help: "SMTP relay (host:port) for mail sent through the Exchange submission URI",
		Doc:  "Mail that Exchange-dialect clients submit (PUT or MOVE to `##DavMailSubmissionURI##`) waits in a persistent queue under `<data>/queue` and is relayed here, with retries and a bounce to the sender on final failure. Empty: sending is refused with 403.",
		ptr:  func(c *Config) any { return &c.Relay },
	},
	{
		Name: "relay-tls", kind: kindEnum, Default: "starttls", choices: []string{"none", "starttls", "tls"},
		Help: "protection of the relay connection",
		Doc:  "`starttls` requires STARTTLS; `tls` is implicit TLS (port 465); `none` is for a relay on loopback only.",
		ptr:  func(c *Config) any { return &c.RelayTLS },
	},
	{
		Name: "relay-user", kind: kindString, Shown: "none (no AUTH)",
		Help: "user name for AUTH PLAIN at the relay (empty: no AUTH)",
		Doc:  "With `relay-password`. The password is never logged and is refused in clear text except to a loopback relay.",
		ptr:  func(c *Config) any { return &c.RelayUser },
	},
	{
		Name: "relay-password", kind: kindString, Shown: "none",
		Help: "password for AUTH PLAIN at the relay (prefer the environment variable)",
		Doc:  "Set it with `DAVMAIL_RELAY_PASSWORD` rather than a flag, which other users can see in the process list.",
		ptr:  func(c *Config) any { return &c.RelayPassword },
	},
	{
		Name: "mail-domain", kind: kindString, Default: "localhost",
		Help: "mail domain: a user's address is <user>@<mail-domain> (or the user name itself when it holds an @)",
		Doc:  "The From address that submitted mail may carry, and the address added when a client sends none (DavMail strips From).",
		ptr:  func(c *Config) any { return &c.MailDomain },
	},
	{
		Name: "log-level", kind: kindEnum, Default: "info", choices: []string{"trace", "debug", "info", "warn", "error"},
		Help: "least severe log level written",
		ptr:  func(c *Config) any { return &c.LogLevel },
	},
	{
		Name: "log-format", kind: kindEnum, Default: "auto", choices: []string{"auto", "json", "console"},
		Help: "log format; auto is console on a terminal, JSON otherwise",
		Doc:  "Logs go to standard output, one JSON object per line (or a human-readable line with console). Every request is one `request` event.",
		ptr:  func(c *Config) any { return &c.LogFormat },
	},
	{
		Name: "read-header-timeout", kind: kindDuration, Default: "10s",
		Help: "time allowed to send the request headers",
		Doc:  "Bounds slow-header (slowloris) clients; must be positive.",
		ptr:  func(c *Config) any { return &c.ReadHeaderTimeout },
	},
	{
		Name: "idle-timeout", kind: kindDuration, Default: "120s",
		Help: "how long an idle keep-alive connection stays open, and how long a request body may stall",
		ptr:  func(c *Config) any { return &c.IdleTimeout },
	},
	{
		Name: "read-timeout", kind: kindDuration, Default: "0s",
		Help: "time allowed to read a whole request, body included; 0 is none",
		Doc:  "None by default: a 25 MiB upload over a slow link can rightly take minutes. Uploads are bounded by max-message-size instead, and by a body idle timeout: a request body that sends nothing for idle-timeout fails, however long the upload has been moving before. Set read-timeout only if every client is fast.",
		ptr:  func(c *Config) any { return &c.ReadTimeout },
	},
	{
		Name: "tls-cert", kind: kindString, Shown: "none (plain HTTP)",
		Help: "TLS certificate chain (PEM) to serve HTTPS on listen; with tls-key",
		Doc:  "The file may hold the full chain, leaf first. Send SIGHUP to reload the certificate and key (after a renewal): new connections get the new certificate, connections already open keep theirs and are not dropped. A reload that fails keeps the old certificate and logs the error.",
		ptr:  func(c *Config) any { return &c.TLSCert },
	},
	{
		Name: "tls-key", kind: kindString, Shown: "none",
		Help: "private key (PEM) of tls-cert",
		ptr:  func(c *Config) any { return &c.TLSKey },
	},
	{
		Name: "http-redirect-listen", kind: kindString, Shown: "none",
		Help: "also listen here (host:port) with plain HTTP that redirects every request to HTTPS",
		Doc:  "Needs tls-cert. GET and HEAD get a 301, other methods a 308 (which keeps the method and body, so a WebDAV client's PROPFIND is redirected too). The redirect goes to the same host name on the port of listen. /healthz is answered directly, for probes.",
		ptr:  func(c *Config) any { return &c.HTTPRedirectListen },
	},
	{
		Name: "trusted-proxies", kind: kindString, Shown: "none",
		Help: "reverse proxies (comma-separated IPs or CIDRs) whose X-Forwarded-For and X-Forwarded-Proto are believed",
		Doc:  "A request from one of these addresses is taken to come from the address X-Forwarded-For names (the rightmost one that is not itself a trusted proxy), for the access log and the per-address limits, and to have used HTTPS when X-Forwarded-Proto says so (for Secure cookies and absolute URLs). From any other address both headers are ignored, so a client cannot forge its address. Example: `127.0.0.1/32, 10.0.0.0/8`.",
		ptr:  func(c *Config) any { return &c.TrustedProxies },
	},
	{
		Name: "metrics-listen", kind: kindString, Shown: "none (admins only, at /metrics on listen)",
		Help: "serve Prometheus metrics at /metrics on this separate address (host:port), without authentication",
		Doc:  "Without it, /metrics is served on the main address to users with the admin role only (Basic auth), so that mail users cannot read the server's figures. With it, /metrics moves to this address and needs no login: bind it to loopback or a private network that only Prometheus reaches. The metrics are described in docs/deploy.md.",
		ptr:  func(c *Config) any { return &c.MetricsListen },
	},
	{
		Name: "shutdown-grace", kind: kindDuration, Default: "30s",
		Help: "on SIGTERM or SIGINT, how long requests in flight (downloads) may take to finish",
		Doc:  "The server stops accepting at once, lets requests in flight finish within this time, then cuts the rest, closes the index and exits. The default fits systemd's 90 s stop timeout; give docker a stop_grace_period longer than it (the compose file does).",
		ptr:  func(c *Config) any { return &c.ShutdownGrace },
	},
	{
		Name: "initial-admin-user", kind: kindString, Default: "admin",
		Help: "name of the admin user created at start when the users file has no users and initial-admin-password is set",
		ptr:  func(c *Config) any { return &c.InitialAdminUser },
	},
	{
		Name: "initial-admin-password", kind: kindString, Shown: "none (no user created)",
		Help: "password of initial-admin-user (prefer the environment variable)",
		Doc:  "For containers: with `DAVMAIL_INITIAL_ADMIN_PASSWORD` set, the first start creates the admin user, and later starts (the users file has users) ignore it, so changing the password afterwards is done with `davmail user add --replace`. Never logged.",
		ptr:  func(c *Config) any { return &c.InitialAdminPassword },
	},
	{
		Name: "demo", kind: kindBool, Default: "false",
		Help: "on first run, create user demo with a sample mailbox and print its password",
		Doc:  "`davmail` with no arguments turns this on. Nothing happens when the users file already has users.",
		ptr:  func(c *Config) any { return &c.Demo },
	},
})

func withEnv(ss []setting) []setting {
	for i := range ss {
		ss[i].Env = envName(ss[i].Name)
	}
	return ss
}

// envName is DAVMAIL_ and the name in upper snake case.
func envName(name string) string {
	return "DAVMAIL_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

func lookup(name string) *setting {
	for i := range settings {
		if settings[i].Name == name {
			return &settings[i]
		}
	}
	return nil
}

// set parses v and stores it in c.
func (s *setting) set(c *Config, v string) error {
	switch p := s.ptr(c).(type) {
	case *string:
		v = strings.TrimSpace(v)
		if s.kind == kindEnum {
			v = strings.ToLower(v)
			if !slices.Contains(s.choices, v) {
				return fmt.Errorf("invalid value %q: want one of %s", v, strings.Join(s.choices, ", "))
			}
		}
		*p = v
	case *int64: // sizes
		if s.minusOne && strings.TrimSpace(v) == "-1" {
			*p = -1
			return nil
		}
		n, err := limits.ParseSize(v)
		if err != nil {
			return err
		}
		*p = n
	case *int:
		n, err := parseInt(v, s.minusOne)
		if err != nil {
			return err
		}
		*p = int(n)
	case *time.Duration:
		d, err := parseDuration(v)
		if err != nil {
			return err
		}
		*p = d
	case *bool:
		b, err := parseBool(v)
		if err != nil {
			return err
		}
		*p = b
	default:
		panic("config: setting " + s.Name + " has an unsupported type") // programmer error
	}
	return nil
}

func (s *setting) shownDefault() string {
	if s.Shown != "" {
		return s.Shown
	}
	return s.Default
}

func (s *setting) argName() string {
	switch s.kind {
	case kindSize:
		return "SIZE"
	case kindInt:
		return "N"
	case kindDuration:
		return "DURATION"
	case kindBool:
		return ""
	case kindEnum:
		// "log-level" → LEVEL
		return strings.ToUpper(s.Name[strings.LastIndexByte(s.Name, '-')+1:])
	}
	switch s.Name {
	case "listen", "relay", "http-redirect-listen", "metrics-listen":
		return "ADDR"
	case "data", "maildir-root":
		return "DIR"
	case "relay-user", "initial-admin-user":
		return "NAME"
	case "relay-password", "initial-admin-password":
		return "PASSWORD"
	case "mail-domain":
		return "DOMAIN"
	case "trusted-proxies":
		return "CIDRS"
	}
	return "FILE"
}

// precedence is the one description of the order of sources, shared by
// the help text and the docs.
const precedence = `Each setting can be given as a flag (--max-message-size 50MiB), an
environment variable (DAVMAIL_MAX_MESSAGE_SIZE=50MiB) or a key in the
YAML file named by --config or DAVMAIL_CONFIG (max-message-size: 50MiB).
When a setting is given in several places, the flag wins over the
environment, which wins over the config file, which wins over the default.
Sizes take KiB, MiB, GiB (or KB, MB, GB, or plain bytes); durations take
s, m, h (10s, 2m, 1h30m).`

// Usage writes the help of command cmd's settings.
func Usage(w io.Writer, cmd string) {
	fmt.Fprintf(w, "Usage: %s [flags]\n\nSettings (flag, environment variable, default):\n\n", cmd)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, s := range settings {
		arg := s.argName()
		if arg != "" {
			arg = " " + arg
		}
		fmt.Fprintf(tw, "  --%s%s\t%s\n", s.Name, arg, s.Help)
		fmt.Fprintf(tw, "  \t%s, default %s", s.Env, s.shownDefault())
		if s.kind == kindEnum {
			fmt.Fprintf(tw, ", one of %s", strings.Join(s.choices, "|"))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%s\n", precedence)
}

// Markdown returns docs/configuration.md.
func Markdown() string {
	var b strings.Builder
	b.WriteString("<!-- Generated by `go generate ./internal/config` from internal/config/settings.go. Do not edit. -->\n\n")
	b.WriteString("# Configuration\n\n")
	b.WriteString("`davmail serve` reads its settings from flags, environment variables and an\noptional YAML config file.\n\n")
	b.WriteString("## Precedence\n\n")
	b.WriteString(precedence + "\n\n")
	b.WriteString("`davmail` with no arguments is `davmail serve --demo` with every other\nsetting at its default.\n\n")
	b.WriteString("## Settings\n\n")
	b.WriteString("| Flag / YAML key | Environment | Default | Meaning |\n|---|---|---|---|\n")
	for _, s := range settings {
		def := s.shownDefault()
		fmt.Fprintf(&b, "| `%s` | `%s` | `%s` | %s |\n", s.Name, s.Env, def, mdEscape(s.Help))
	}
	b.WriteString("\n## Details\n\n")
	for _, s := range settings {
		fmt.Fprintf(&b, "### %s\n\n", s.Name)
		fmt.Fprintf(&b, "%s.", mdEscape(upperFirst(s.Help)))
		if s.Doc != "" {
			b.WriteString(" " + s.Doc)
		}
		b.WriteString("\n\n")
		switch s.kind {
		case kindEnum:
			fmt.Fprintf(&b, "One of: `%s`. ", strings.Join(s.choices, "`, `"))
		case kindSize:
			b.WriteString("A size. ")
		case kindDuration:
			b.WriteString("A duration. ")
		case kindBool:
			b.WriteString("true or false. ")
		}
		fmt.Fprintf(&b, "Default: `%s`. Flag: `--%s`. Environment: `%s`.", s.shownDefault(), s.Name, s.Env)
		if s.Name != "config" {
			fmt.Fprintf(&b, " YAML: `%s`.", s.Name)
		}
		b.WriteString("\n\n")
	}
	b.WriteString("## Example config file\n\n```yaml\n")
	for _, s := range settings {
		if s.Name == "config" {
			continue
		}
		fmt.Fprintf(&b, "# %s\n", s.Help)
		if s.Default == "" {
			fmt.Fprintf(&b, "# %s: %s\n", s.Name, s.shownDefault())
		} else {
			fmt.Fprintf(&b, "%s: %s\n", s.Name, yamlScalar(s.Default))
		}
	}
	b.WriteString("```\n")
	return b.String()
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// yamlScalar quotes values YAML would otherwise read as something else.
func yamlScalar(v string) string {
	if strings.ContainsAny(v, ":#{}[],&*!|>'\"%@`") {
		return `"` + v + `"`
	}
	return v
}
