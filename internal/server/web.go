package server

// mountWeb adds the browser UI (package web) to s.mux. It runs once, in
// newWithStore, after the WebDAV and forms-login routes are in place.
func (s *Server) mountWeb() error { return nil }
