// Package davbench is a seeded, time-boxed load generator for davmail in
// the spirit of Dovecot's imaptest: N concurrent clients, each bound to
// one user and to two scratch folders of its own, send a weighted random
// mix of PROPFIND, GET, PUT, MOVE, PROPPATCH, SEARCH and LOCK/UNLOCK for
// a fixed time, keep a model of every write the server acknowledged, and
// then check the server against that model: every acknowledged message
// exists exactly once where its last acknowledged operation put it, with
// the bytes that were sent and the read flag of its last acknowledged
// PROPPATCH, and nothing else is in the scratch folders.
//
// Run drives one whole benchmark (setup, load, check, cleanup) and
// returns a Result, which prints as a table (WriteTable) or JSON. The
// command is cmd/davbench; docs/davbench.md explains the figures.
//
// Only loopback servers are accepted unless Config.AllowRemote is set: a
// load tool pointed at a production server by mistake is an outage.
package davbench
