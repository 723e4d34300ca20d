// Package lint holds repository-wide checks that run as ordinary tests:
// every package carries a doc comment, and the dependency rules between
// packages hold (dav and convert never import web).
package lint
