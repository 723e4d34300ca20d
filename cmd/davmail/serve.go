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

	"github.com/davmail/davmail/internal/config"
	"github.com/davmail/davmail/internal/demo"
	"github.com/davmail/davmail/internal/server"
	"github.com/rs/zerolog"
	"golang.org/x/term"
)

// shutdownGrace is how long requests in progress get to finish after
// SIGINT/SIGTERM: long enough for a large PROPFIND or a 25 MiB download
// on a decent link, and within systemd's default 90 s stop timeout.
// Docker's default is 10 s; give the container a longer stop grace period.
const shutdownGrace = 30 * time.Second

// runServe runs the server until SIGINT or SIGTERM. firstRun is `davmail`
// with no arguments: the defaults, and the demo account unless
// DAVMAIL_DEMO says otherwise.
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
	if err := serve(ctx, cfg, log, stdout); err != nil {
		log.Error().Err(err).Msg("davmail stopped with an error")
		return exitError
	}
	return exitOK
}

// serve runs davmail with cfg until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, cfg config.Config, log zerolog.Logger, stdout io.Writer) error {
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
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		srv.Shutdown(context.Background())
		return err
	}
	addr := ln.Addr().String()
	ev := log.Info().Str("addr", addr).Str("version", versionString()).
		Str("data", cfg.Data).Str("maildir_root", cfg.MaildirRoot).Str("users", cfg.Users).
		Int("user_count", srv.Users().Len())
	if cfg.ConfigFile != "" {
		ev = ev.Str("config", cfg.ConfigFile)
	}
	ev.Msg("listening")
	if srv.Users().Len() == 0 {
		log.Warn().Str("users", cfg.Users).Msg("no users yet: every login fails until one is added with 'davmail user add'")
	}
	if acct != nil {
		demo.PrintBanner(stdout, acct, demo.URL(addr))
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		// Serve failed on its own (not after Shutdown).
		srv.Shutdown(context.Background())
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	log.Info().Dur("grace", shutdownGrace).Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-errc; serr != nil {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info().Msg("stopped")
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
