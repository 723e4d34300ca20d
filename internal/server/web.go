package server

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/davmail/davmail/limits"
	"github.com/davmail/davmail/web"
)

// mountWeb adds the browser UI (package web) to s.mux. It runs once, in
// newWithStore, after the WebDAV and forms-login routes are in place.
//
// It also creates the UI's activity recorder (the admin status page's
// "who used the server in the last hour"), which Handler puts around the
// limits and the routes: it sees every request, throttled ones included,
// with the user and the refusal recorded in the reqlog entry.
func (s *Server) mountWeb() error {
	act := web.NewActivity(web.ActivityOptions{})
	h, err := web.New(web.Options{
		Store:           s.store,
		Sessions:        s.sessions,
		Users:           s.users,
		LoginFailed:     s.auth.LoginFailed,
		Logger:          s.log.With().Str("component", "web").Logger(),
		Prefix:          web.Prefix,
		DAVPrefix:       Prefix,
		MaxMessageSize:  s.cfg.MaxMessageSize,
		MaxResponseSize: s.cfg.MaxResponseSize,
		Settings:        s.webSettings(),
		Activity:        act,
	})
	if err != nil {
		return err
	}
	s.mux.Handle(web.Prefix, h)
	s.mux.Handle(strings.TrimSuffix(web.Prefix, "/"), http.RedirectHandler(web.Prefix, http.StatusMovedPermanently))
	s.activity = act
	return nil
}

// webSettings lists the limits and timeouts for the admin status page.
func (s *Server) webSettings() []web.Setting {
	c := s.cfg
	depth := fmt.Sprint(c.MaxDepthInfinity, " responses")
	if c.MaxDepthInfinity < 0 {
		depth = "refused"
	}
	relay := c.Relay
	if relay == "" {
		relay = "none (sending is off)"
	}
	return []web.Setting{
		{Name: "max-message-size", Value: limits.FormatSize(c.MaxMessageSize)},
		{Name: "max-response-size", Value: limits.FormatSize(c.MaxResponseSize)},
		{Name: "max-xml-bytes", Value: limits.FormatSize(c.MaxXMLBytes)},
		{Name: "max-xml-elements", Value: fmt.Sprint(c.MaxXMLElements)},
		{Name: "max-xml-depth", Value: fmt.Sprint(c.MaxXMLDepth)},
		{Name: "max-depth-infinity", Value: depth},
		{Name: "read-header-timeout", Value: c.ReadHeaderTimeout.String()},
		{Name: "read-timeout", Value: durationOrNone(c.ReadTimeout.String(), c.ReadTimeout == 0)},
		{Name: "idle-timeout", Value: c.IdleTimeout.String()},
		{Name: "relay", Value: relay},
	}
}

func durationOrNone(s string, none bool) string {
	if none {
		return "none"
	}
	return s
}
