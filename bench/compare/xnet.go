package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/webdav"
)

// xnetWebdav serves a directory with golang.org/x/net/webdav's own Handler
// over webdav.Dir: the library the gateway's WebDAV layer was to be built
// on. Its Depth 1 PROPFIND stats every entry through the FileSystem
// interface; the listing case measures it beside davmail and Apache, in
// the same run, as the evidence for the design in docs/architecture.md
// (dav/ writes listings from the index instead).
//
// It runs inside the bench process, so the client shares that process
// with it (Apache and davmail run in their own); the figure is for
// information, not a target.
type xnetWebdav struct {
	base string
	srv  *http.Server
}

func startXNetWebdav(dir string) (*xnetWebdav, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler: &webdav.Handler{
			Prefix:     "/bulk",
			FileSystem: webdav.Dir(dir),
			LockSystem: webdav.NewMemLS(),
		},
		ReadHeaderTimeout: 10 * time.Second, // loopback benchmark; bounds a stuck client
	}
	x := &xnetWebdav{base: "http://" + ln.Addr().String(), srv: srv}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listing requests then fail and the case reports ERROR
		}
	}()
	return x, nil
}

func (x *xnetWebdav) stop() {
	if x == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	x.srv.Shutdown(ctx)
}
