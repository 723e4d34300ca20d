// Package e2e holds the end-to-end tests: a real davmail server (built by
// internal/server from a config, as cmd/davmail does) on 127.0.0.1:0,
// serving a deterministic Maildir++ corpus from ../shared/tools/mkcorpus,
// driven by real WebDAV clients (litmus, rclone, cadaver) and by a small
// Go WebDAV client that checks the corpus byte for byte.
//
// The package has no code outside its tests. The peers are Debian
// packages; scripts/test.sh installs them. A missing peer fails the test
// when CI=true and skips it otherwise, with the apt-get command to run.
package e2e
