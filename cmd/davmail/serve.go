package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/davmail/davmail/internal/auth"
	"github.com/davmail/davmail/internal/config"
	"github.com/davmail/davmail/internal/demo"
	"github.com/davmail/davmail/internal/server"
	"github.com/rs/zerolog"
	"golang.org/x/term"
)

// runServe runs the server until SIGINT or SIGTERM; SIGHUP reloads the
// TLS certificate. firstRun is `davmail` with no arguments: the defaults,
// and the demo account unless DAVMAIL_DEMO says otherwise.
func runServe(args []string, firstRun bool, stdout, stderr io.Writer) int {
	cfg, err := config.Load("davmail serve", args, os.LookupEnv, stderr)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "davmail: %v\n", err)
			return exitUsage
		}
		return exitCodeFor(err)
	}
	if _, set := os.LookupEnv("DAVMAIL_DEMO"); firstRun && !set {
		cfg.Demo = true
	}
	log := newLogger(cfg, stdout)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// One pending SIGHUP is enough: a reload reads the current files.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := serve(ctx, cfg, log, stdout, hup); err != nil {
		log.Error().Err(err).Msg("davmail stopped with an error")
		return exitError
	}
	return exitOK
}

// listeners are the addresses serve listens on.
type listeners struct {
	main, redirect, metrics net.Listener
}

func (l listeners) close() {
	for _, ln := range []net.Listener{l.main, l.redirect, l.metrics} {
		if ln != nil {
			ln.Close()
		}
	}
}

func listen(cfg config.Config) (listeners, error) {
	var l listeners
	var err error
	if l.main, err = net.Listen("tcp", cfg.Listen); err != nil {
		return l, err
	}
	if cfg.HTTPRedirectListen != "" {
		if l.redirect, err = net.Listen("tcp", cfg.HTTPRedirectListen); err != nil {
			l.close()
			return l, fmt.Errorf("http-redirect-listen: %w", err)
		}
	}
	if cfg.MetricsListen != "" {
		if l.metrics, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			l.close()
			return l, fmt.Errorf("metrics-listen: %w", err)
		}
	}
	return l, nil
}

// serve runs davmail with cfg until ctx ends, then shuts down gracefully:
// it stops accepting on every listener, lets requests in flight finish
// within cfg.ShutdownGrace, then closes the queue and the index. Each
// value received on reload reloads the TLS certificate.
func serve(ctx context.Context, cfg config.Config, log zerolog.Logger, stdout io.Writer, reload <-chan os.Signal) error {
	if err := initialAdmin(cfg, log); err != nil {
		return err
	}
	var acct *demo.Account
	if cfg.Demo {
		var err error
		if err = os.MkdirAll(cfg.Data, 0o700); err != nil {
			return err
		}
		acct, err = demo.Seed(demo.Options{UsersFile: cfg.Users, MaildirRoot: cfg.MaildirRoot, Logger: log})
		if err != nil {
			return err
		}
	}
	srv, err := server.New(cfg, log)
	if err != nil {
		return err
	}
	lns, err := listen(cfg)
	if err != nil {
		srv.Shutdown(context.Background())
		return err
	}
	addr := lns.main.Addr().String()
	ev := log.Info().Str("addr", addr).Str("version", versionString()).Bool("tls", srv.TLS()).
		Str("data", cfg.Data).Str("maildir_root", cfg.MaildirRoot).Str("users", cfg.Users).
		Int("user_count", srv.Users().Len())
	if cfg.ConfigFile != "" {
		ev = ev.Str("config", cfg.ConfigFile)
	}
	if lns.redirect != nil {
		ev = ev.Str("redirect_addr", lns.redirect.Addr().String())
	}
	if lns.metrics != nil {
		ev = ev.Str("metrics_addr", lns.metrics.Addr().String())
	}
	ev.Msg("listening")
	if srv.Users().Len() == 0 && cfg.IMAPUpstream == "" { // with an upstream, logins are checked there
		log.Warn().Str("users", cfg.Users).Msg("no users yet: every login fails until one is added with 'davmail user add'")
	}
	if acct != nil {
		demo.PrintBanner(stdout, acct, demo.URL(addr))
	}

	errc := make(chan error, 3) // one per listener
	running := 1
	go func() { errc <- srv.Serve(lns.main) }()
	if lns.redirect != nil {
		running++
		go func() { errc <- srv.ServeRedirect(lns.redirect, addr) }()
	}
	if lns.metrics != nil {
		running++
		go func() { errc <- srv.ServeMetrics(lns.metrics) }()
	}
	for stopped := false; !stopped; {
		select {
		case err := <-errc:
			// A listener failed on its own (not after Shutdown).
			running--
			srv.Shutdown(context.Background())
			for ; running > 0; running-- {
				<-errc
			}
			return fmt.Errorf("serving: %w", err)
		case <-reload:
			if !srv.TLS() {
				log.Info().Msg("SIGHUP: no TLS certificate to reload (the users file reloads by itself)")
			} else {
				srv.ReloadTLS() // logs the outcome; the old certificate stays on error
			}
		case <-ctx.Done():
			stopped = true
		}
	}
	log.Info().Dur("grace", cfg.ShutdownGrace).Msg("shutting down: no new connections; requests in flight may finish")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	err = srv.Shutdown(sctx)
	for ; running > 0; running-- {
		if serr := <-errc; serr != nil {
			err = errors.Join(err, serr)
		}
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info().Msg("stopped")
	return nil
}

// initialAdmin creates cfg's initial admin user when its password is set
// and the users file has no users yet (the first start of a container).
// Later starts leave the file alone, so a password changed with 'davmail
// user add --replace' is never reset.
func initialAdmin(cfg config.Config, log zerolog.Logger) error {
	if cfg.InitialAdminPassword == "" {
		return nil
	}
	users, err := auth.LoadUsers(cfg.Users)
	if err != nil {
		return err
	}
	if users.Len() > 0 {
		log.Debug().Str("users", cfg.Users).Msg("users file has users: initial-admin-password ignored")
		return nil
	}
	if err := auth.AddUser(cfg.Users, cfg.InitialAdminUser, cfg.InitialAdminPassword, auth.RoleAdmin); err != nil {
		return fmt.Errorf("creating the initial admin user: %w", err)
	}
	log.Info().Str("user", cfg.InitialAdminUser).Str("users", cfg.Users).Msg("initial admin user created")
	return nil
}

// newLogger builds the one logger of the process from the config: JSON
// lines on stdout, or zerolog's console format when asked or when stdout
// is a terminal (log-format auto).
func newLogger(cfg config.Config, stdout io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		level = zerolog.InfoLevel // config.Load accepts only valid levels
	}
	format := cfg.LogFormat
	if format == "auto" {
		format = "json"
		if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "console"
		}
	}
	// SyncWriter: events come from many goroutines; stdout may be any
	// writer (a buffer in tests).
	w := zerolog.SyncWriter(stdout)
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.DateTime}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}
