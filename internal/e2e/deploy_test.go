package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/davmail/davmail/internal/config"
	"gopkg.in/yaml.v3"
)

// The deployment checks: the compose file and Dockerfile agree with each
// other and with the configuration files they mount, the Dockerfile's
// steps work natively (scripts/deploy-check.sh), and the Dovecot
// configuration the compose file mounts serves the very Maildirs the
// gateway serves.

// deployVmailUID is the owner of the mail in every container (Dockerfile USER,
// dovecot.conf userdb, Postfix virtual_uid_maps).
const deployVmailUID = 5000

func deployReadRepoFile(t *testing.T, rel string) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return string(b)
}

// deployComposeConfig is the part of `docker-compose config` output checked.
type deployComposeConfig struct {
	Services map[string]struct {
		Build struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Image       string            `yaml:"image"`
		Environment map[string]string `yaml:"environment"`
		Ports       []yaml.Node       `yaml:"ports"`
		Volumes     []string          `yaml:"volumes"`
		Healthcheck struct {
			Test     []string `yaml:"test"`
			Interval string   `yaml:"interval"`
		} `yaml:"healthcheck"`
		StopGracePeriod string `yaml:"stop_grace_period"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// deployTargetPorts returns the container ports a service publishes.
func deployTargetPorts(t *testing.T, ports []yaml.Node) []int {
	t.Helper()
	var out []int
	for _, p := range ports {
		switch p.Kind {
		case yaml.ScalarNode: // "127.0.0.1:9090:9090/tcp"
			s := strings.TrimSuffix(p.Value, "/tcp")
			n, err := strconv.Atoi(s[strings.LastIndexByte(s, ':')+1:])
			if err != nil {
				t.Fatalf("port %q: %v", p.Value, err)
			}
			out = append(out, n)
		case yaml.MappingNode: // {published: 8080, target: 8080}
			var m struct {
				Target int `yaml:"target"`
			}
			if err := p.Decode(&m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m.Target)
		}
	}
	return out
}

func deployPortOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// TestComposeFile validates docker-compose.yml with docker-compose
// itself, then checks that every service, build context, mounted file,
// volume, port and healthcheck it names exists and agrees with the files
// behind it.
func TestComposeFile(t *testing.T) {
	dc := needTool(t, "docker-compose", "docker-compose")
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	compose := filepath.Join(root, "docker-compose.yml")
	res := runTool(t, toolOpts{Dir: root}, dc, "-f", compose, "--env-file", filepath.Join(root, ".env.example"), "config")
	if res.Err != nil {
		t.Fatalf("docker-compose config: %v\n%s", res.Err, res.Stderr)
	}
	var cc deployComposeConfig
	if err := yaml.Unmarshal([]byte(res.Stdout), &cc); err != nil {
		t.Fatalf("parsing the rendered compose file: %v\n%s", err, res.Stdout)
	}

	// Services, their images' build files and healthchecks.
	for _, name := range []string{"gateway", "dovecot", "mta"} {
		svc, ok := cc.Services[name]
		if !ok {
			t.Errorf("no service %q", name)
			continue
		}
		df := svc.Build.Dockerfile
		if df == "" {
			df = "Dockerfile"
		}
		if _, err := os.Stat(filepath.Join(svc.Build.Context, df)); err != nil {
			t.Errorf("%s: build file: %v", name, err)
		}
		if len(svc.Healthcheck.Test) < 2 || svc.Healthcheck.Test[0] != "CMD" || svc.Healthcheck.Interval == "" {
			t.Errorf("%s: healthcheck %+v", name, svc.Healthcheck)
		}
		// Bind mounts exist; named volumes are declared.
		for _, v := range svc.Volumes {
			src := strings.SplitN(v, ":", 2)[0]
			if strings.HasPrefix(src, "/") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("%s: mounted file: %v", name, err)
				}
			} else if _, ok := cc.Volumes[src]; !ok {
				t.Errorf("%s: volume %q not declared", name, src)
			}
		}
	}
	for _, v := range []string{"mail", "gateway-data", "mta-spool"} {
		if _, ok := cc.Volumes[v]; !ok {
			t.Errorf("no named volume %q", v)
		}
	}
	hasVolume := func(svc, volume, target string) {
		t.Helper()
		if !slices.ContainsFunc(cc.Services[svc].Volumes, func(v string) bool { return strings.HasPrefix(v, volume+":"+target+":") }) {
			t.Errorf("%s: %s not mounted at %s: %v", svc, volume, target, cc.Services[svc].Volumes)
		}
	}
	// The mail volume is where each configuration looks for it.
	gw := cc.Services["gateway"]
	hasVolume("gateway", "mail", gw.Environment["DAVMAIL_MAILDIR_ROOT"])
	hasVolume("gateway", "gateway-data", gw.Environment["DAVMAIL_DATA"])
	dovecotConf := deployReadRepoFile(t, "deploy/dovecot/dovecot.conf")
	if m := regexp.MustCompile(`(?m)^mail_location = maildir:(\S+)/%u/Maildir$`).FindStringSubmatch(dovecotConf); m == nil {
		t.Error("dovecot.conf: no mail_location = maildir:<root>/%u/Maildir")
	} else {
		hasVolume("dovecot", "mail", m[1])
	}
	mainCf := deployReadRepoFile(t, "deploy/postfix/main.cf")
	if m := regexp.MustCompile(`(?m)^virtual_mailbox_base = (\S+)$`).FindStringSubmatch(mainCf); m == nil {
		t.Error("postfix main.cf: no virtual_mailbox_base")
	} else {
		hasVolume("mta", "mail", m[1])
	}
	// The users file Dovecot and the MTA read is the gateway's.
	usersFile := filepath.Join(gw.Environment["DAVMAIL_DATA"], "users")
	if !strings.Contains(dovecotConf, " "+usersFile+"\n") {
		t.Errorf("dovecot.conf does not read the gateway's users file %s", usersFile)
	}
	if got := cc.Services["mta"].Environment["DAVMAIL_USERS"]; got != usersFile {
		t.Errorf("mta reads users from %q, want %s", got, usersFile)
	}
	for _, svc := range []string{"dovecot", "mta"} {
		hasVolume(svc, "gateway-data", gw.Environment["DAVMAIL_DATA"])
	}

	// The gateway's environment is a valid davmail configuration, and its
	// published ports are the ones it listens on.
	cfg, err := config.Load("compose", nil, func(k string) (string, bool) { v, ok := gw.Environment[k]; return v, ok }, io.Discard)
	if err != nil {
		t.Fatalf("the gateway's environment is not a valid configuration: %v", err)
	}
	for k := range gw.Environment {
		if !strings.HasPrefix(k, "DAVMAIL_") {
			t.Errorf("gateway: unexpected variable %s", k)
		}
	}
	if cfg.InitialAdminPassword == "" || cfg.Relay == "" || cfg.MetricsListen == "" {
		t.Errorf("gateway config: admin password %v, relay %q, metrics %q", cfg.InitialAdminPassword != "", cfg.Relay, cfg.MetricsListen)
	}
	if got, want := deployTargetPorts(t, gw.Ports), []int{deployPortOf(t, cfg.Listen), deployPortOf(t, cfg.MetricsListen)}; !slices.Equal(got, want) {
		t.Errorf("gateway publishes %v, listens on %v", got, want)
	}
	if d, err := time.ParseDuration(gw.StopGracePeriod); err != nil || d <= cfg.ShutdownGrace {
		t.Errorf("stop_grace_period %q must exceed shutdown-grace %v", gw.StopGracePeriod, cfg.ShutdownGrace)
	}
	// The relay is the mta service on the port Postfix's smtpd listens on.
	masterCf := deployReadRepoFile(t, "deploy/postfix/master.cf")
	if !regexp.MustCompile(`(?m)^smtp\s+inet\s`).MatchString(masterCf) {
		t.Error("postfix master.cf has no smtp inet service")
	}
	if cfg.Relay != "mta:25" {
		t.Errorf("relay %q, want mta:25 (master.cf's smtp service)", cfg.Relay)
	}
	if got := deployTargetPorts(t, cc.Services["mta"].Ports); !slices.Equal(got, []int{25}) {
		t.Errorf("mta publishes %v, want 25", got)
	}
	if !regexp.MustCompile(`(?s)inet_listener imap \{\s*port = 143\s*\}`).MatchString(dovecotConf) {
		t.Error("dovecot.conf: IMAP not on port 143")
	}
	if got := deployTargetPorts(t, cc.Services["dovecot"].Ports); !slices.Equal(got, []int{143}) {
		t.Errorf("dovecot publishes %v, want 143", got)
	}
	if got := cc.Services["mta"].Environment["MAIL_DOMAIN"]; got != cfg.MailDomain {
		t.Errorf("mta domain %q, gateway mail-domain %q", got, cfg.MailDomain)
	}

	// One uid owns the mail everywhere.
	dockerfile := deployReadRepoFile(t, "Dockerfile")
	uid := strconv.Itoa(deployVmailUID)
	for what, re := range map[string]string{
		"Dockerfile USER":              `(?m)^USER ` + uid + `:` + uid + `$`,
		"dovecot.conf userdb":          `uid=` + uid + ` gid=` + uid,
		"postfix main.cf virtual_uid":  `(?m)^virtual_uid_maps = static:` + uid + `$`,
		"postfix main.cf virtual_gid":  `(?m)^virtual_gid_maps = static:` + uid + `$`,
		"Dockerfile HEALTHCHECK":       `(?m)^\s+CMD \["/davmail", "healthcheck"\]$`,
		"Dockerfile EXPOSE gateway":    `(?m)^EXPOSE ` + strconv.Itoa(deployPortOf(t, cfg.Listen)) + `$`,
		"Dockerfile build script":      `sh deploy/build.sh /out/davmail`,
		"Dockerfile distroless static": `(?m)^FROM gcr\.io/distroless/static-debian12:nonroot$`,
	} {
		text := dockerfile
		if strings.HasPrefix(what, "dovecot") {
			text = dovecotConf
		} else if strings.HasPrefix(what, "postfix") {
			text = mainCf
		}
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("%s: no match for %s", what, re)
		}
	}
	// The image's ENV is a valid configuration too.
	env := map[string]string{}
	for _, m := range regexp.MustCompile(`(DAVMAIL_[A-Z_]+)=(\S+)`).FindAllStringSubmatch(dockerfile, -1) {
		env[m[1]] = m[2]
	}
	if _, err := config.Load("image", nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, io.Discard); err != nil || len(env) < 4 {
		t.Errorf("Dockerfile ENV %v: %v", env, err)
	}

	// Without a password the compose file refuses to render. Rendered from
	// a copy, so that a real .env beside the original is not read.
	tmp := t.TempDir()
	if err := os.WriteFile(filepath.Join(tmp, "docker-compose.yml"), []byte(deployReadRepoFile(t, "docker-compose.yml")), 0o600); err != nil {
		t.Fatal(err)
	}
	res = runTool(t, toolOpts{Dir: tmp}, dc, "-f", filepath.Join(tmp, "docker-compose.yml"), "config")
	if res.Err == nil || !strings.Contains(res.Stderr, "DAVMAIL_ADMIN_PASSWORD") {
		t.Errorf("compose without .env: %v\n%s", res.Err, res.Stderr)
	}
}

// TestDeployCheckScript runs scripts/deploy-check.sh: the Dockerfile's
// build, ENV, HEALTHCHECK and STOPSIGNAL, natively.
func TestDeployCheckScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bash := needTool(t, "bash", "bash")
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Five minutes: a cold static build on a shared 2-core runner takes
	// two to three.
	res := runTool(t, toolOpts{Dir: root, Timeout: 5 * time.Minute}, bash, "scripts/deploy-check.sh")
	if res.Err != nil || !strings.Contains(res.Stdout, "deploy-check: OK") {
		t.Fatalf("deploy-check.sh: %v\n%s\n%s", res.Err, res.Stdout, res.Stderr)
	}
}

// deployImapConn is a minimal IMAP4rev1 client: tagged commands, untagged lines
// collected, each exchange under a deadline.
type deployImapConn struct {
	t   *testing.T
	c   net.Conn
	br  *bufio.Reader
	tag int
}

func deployDialIMAP(t *testing.T, addr string) *deployImapConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ic := &deployImapConn{t: t, c: c, br: bufio.NewReader(c)}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	greeting, err := ic.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(greeting, "* OK") {
		t.Fatalf("IMAP greeting %q: %v", greeting, err)
	}
	return ic
}

// cmd sends one command and returns the untagged lines; it fails the test
// unless the tagged answer is OK.
func (ic *deployImapConn) cmd(format string, args ...any) []string {
	ic.t.Helper()
	ic.tag++
	tag := fmt.Sprintf("a%d", ic.tag)
	// 30 s: a SELECT of a large corpus folder makes Dovecot index it.
	ic.c.SetDeadline(time.Now().Add(30 * time.Second))
	line := tag + " " + fmt.Sprintf(format, args...)
	if _, err := io.WriteString(ic.c, line+"\r\n"); err != nil {
		ic.t.Fatal(err)
	}
	var untagged []string
	for range 100_000 { // bounded: far more lines than any answer here
		l, err := ic.br.ReadString('\n')
		if err != nil {
			ic.t.Fatalf("IMAP %s: %v", line, err)
		}
		l = strings.TrimRight(l, "\r\n")
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				ic.t.Fatalf("IMAP %s: %s", line, l)
			}
			return untagged
		}
		untagged = append(untagged, l)
	}
	ic.t.Fatalf("IMAP %s: no tagged answer", line)
	return nil
}

// deployImapQuote quotes s as an IMAP quoted string.
func deployImapQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

var deployListRE = regexp.MustCompile(`^\* LIST \(([^)]*)\) (?:"[^"]*"|NIL) (.+)$`)

// folders lists the mailboxes (raw modified UTF-7 names), selectable only.
func (ic *deployImapConn) folders() []string {
	ic.t.Helper()
	var out []string
	for _, l := range ic.cmd(`LIST "" "*"`) {
		m := deployListRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if strings.Contains(strings.ToLower(m[1]), `\noselect`) {
			continue
		}
		name := m[2]
		if uq, err := strconv.Unquote(name); err == nil && strings.HasPrefix(name, `"`) {
			name = uq
		}
		out = append(out, name)
	}
	return out
}

// exists SELECTs a mailbox (EXAMINE: read-only) and returns its EXISTS.
func (ic *deployImapConn) exists(mbox string) int {
	ic.t.Helper()
	for _, l := range ic.cmd("EXAMINE %s", deployImapQuote(mbox)) {
		var n int
		if _, err := fmt.Sscanf(l, "* %d EXISTS", &n); err == nil {
			return n
		}
	}
	ic.t.Fatalf("EXAMINE %s: no EXISTS", mbox)
	return 0
}

// deployDecodeMUTF7 decodes an IMAP modified UTF-7 mailbox name (RFC 3501
// §5.1.3).
func deployDecodeMUTF7(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '&' {
			b.WriteByte(s[i])
			continue
		}
		j := strings.IndexByte(s[i:], '-')
		if j < 0 {
			return "", fmt.Errorf("unterminated shift in %q", s)
		}
		enc := s[i+1 : i+j]
		i += j
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := base64.RawStdEncoding.DecodeString(strings.ReplaceAll(enc, ",", "/"))
		if err != nil || len(raw)%2 != 0 {
			return "", fmt.Errorf("bad modified base64 in %q", s)
		}
		u := make([]uint16, len(raw)/2)
		for k := range u {
			u[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		b.WriteString(string(utf16.Decode(u)))
	}
	return b.String(), nil
}

func TestDeployDecodeMUTF7(t *testing.T) {
	for in, want := range map[string]string{"INBOX": "INBOX", "Entw&APw-rfe": "Entwürfe", "&-x": "&x", "&ZeVnLIqe-": "日本語"} {
		if got, err := deployDecodeMUTF7(in); err != nil || got != want {
			t.Errorf("deployDecodeMUTF7(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// deployFreePort returns a port free on 127.0.0.1 now. Dovecot cannot be
// given port 0, so the port is picked, released and handed over; the
// window for a collision is the few milliseconds until Dovecot binds it.
func deployFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// deployStartDovecot runs deploy/dovecot/dovecot.conf with Debian's Dovecot over
// mailRoot and usersFile, changing only paths and the port: the file is
// copied with its two paths replaced, and a wrapper includes it and sets
// the run-time directories, the log files and the port.
func deployStartDovecot(t *testing.T, mailRoot, usersFile string) string {
	t.Helper()
	dovecot := needTool(t, "dovecot", "dovecot-imapd")
	if os.Geteuid() != 0 {
		if inCI() {
			t.Fatal("the Dovecot test needs root (Dovecot switches to the mail uid); CI runs the tests as root")
		}
		t.Skip("the Dovecot test needs root: Dovecot switches to the mail uid 5000")
	}
	conf := deployReadRepoFile(t, "deploy/dovecot/dovecot.conf")
	for _, p := range []string{"/srv/mail/%u", "/var/lib/davmail/users"} {
		if !strings.Contains(conf, p) {
			t.Fatalf("dovecot.conf no longer mentions %s: update this test's path overrides", p)
		}
	}
	conf = strings.NewReplacer("/srv/mail/%u", mailRoot+"/%u", "/var/lib/davmail/users", usersFile).Replace(conf)
	dir := t.TempDir()
	for _, d := range []string{"run", "state"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "dovecot.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	port := deployFreePort(t)
	wrapper := fmt.Sprintf(`!include %s/dovecot.conf
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
info_log_path = %[1]s/dovecot.log
listen = 127.0.0.1
service imap-login {
  inet_listener imap {
    port = %d
  }
}
`, dir, port)
	wrapperPath := filepath.Join(dir, "test.conf")
	if err := os.WriteFile(wrapperPath, []byte(wrapper), 0o644); err != nil {
		t.Fatal(err)
	}
	// The context kills Dovecot's whole process group should it ignore
	// SIGTERM.
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, dovecot, "-F", "-c", wrapperPath)
	ownProcessGroup(cmd)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Logf("dovecot output:\n%s\ndovecot.log:\n%s", out.String(), log)
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Fatalf("dovecot exited (%v):\n%s\n%s", err, out.String(), log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dovecot not listening on %s after 20s", addr)
		}
	}
	return addr
}

// deployChownTree gives the tree at dir to uid/gid, as the containers' volumes
// are, and opens the directories above it for traversal.
func deployChownTree(t *testing.T, dir string, uid int) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
	if err != nil {
		t.Fatal(err)
	}
	for d := filepath.Dir(dir); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDovecotServesGatewayMaildir starts Dovecot with the compose file's
// dovecot.conf over the gateway's own Maildirs and users file, and checks
// that both serve the same mail: the same users log in with the same
// passwords, and every folder has as many messages over IMAP as over
// WebDAV.
func TestDovecotServesGatewayMaildir(t *testing.T) {
	ts := startServer(t, serverOptions{})
	// startServer's layout: <tmp>/maildir served, <tmp>/users, <tmp>/corpus.
	tmp := filepath.Dir(ts.Corpus)
	mailRoot, usersFile := filepath.Join(tmp, "maildir"), filepath.Join(tmp, "users")
	for _, p := range []string{mailRoot, usersFile} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("startServer's layout changed: %v", err)
		}
	}
	if os.Geteuid() == 0 {
		deployChownTree(t, mailRoot, deployVmailUID)
	}
	addr := deployStartDovecot(t, mailRoot, usersFile)

	for _, user := range testUsers {
		ic := deployDialIMAP(t, addr)
		ic.cmd("LOGIN %s %s", deployImapQuote(user), deployImapQuote(ts.Passwords[user]))
		folders := ic.folders()
		if !slices.Contains(folders, "INBOX") || len(folders) < 2 {
			t.Fatalf("%s: IMAP folders %v", user, folders)
		}
		dc := ts.client(t, user)
		total := 0
		for _, raw := range folders {
			name, err := deployDecodeMUTF7(raw)
			if err != nil {
				t.Fatal(err)
			}
			n := ic.exists(raw)
			total += n
			status, entries := dc.propfind(t, folderPath(user, name), "1")
			if status != 207 {
				t.Errorf("%s: PROPFIND %s: %d", user, name, status)
				continue
			}
			items := 0
			for _, e := range entries {
				if !e.isCollection() {
					items++
				}
			}
			if items != n {
				t.Errorf("%s: folder %q: %d messages over IMAP, %d over WebDAV", user, name, n, items)
			}
		}
		if total == 0 {
			t.Errorf("%s: no messages at all over IMAP", user)
		}
		// A wrong password is refused by Dovecot as by the gateway.
		bad := deployDialIMAP(t, addr)
		bad.c.SetDeadline(time.Now().Add(30 * time.Second)) // Dovecot delays failed logins
		io.WriteString(bad.c, "x LOGIN "+deployImapQuote(user)+` "wrong"`+"\r\n")
		l, _ := bad.br.ReadString('\n')
		if !strings.HasPrefix(l, "x NO") {
			t.Errorf("%s: wrong password: %q", user, l)
		}
		t.Logf("%s: %d folders, %d messages, same over IMAP and WebDAV", user, len(folders), total)
	}
}
