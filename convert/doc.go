// Package convert turns raw RFC 5322/MIME messages into what the gateway
// serves besides raw bytes. Today that is the index-time scan: Scan reads
// a message once and returns its envelope and its MIME structure, every
// entity with byte offsets, its transfer encoding and the exact size it
// decodes to (ScanEnvelope is the envelope alone, for the indexer).
// NewDecoder decodes a body with the very rules the sizes were computed
// with, so that a Content-Length announced from the index is always the
// length served.
//
// Everything here streams with fixed buffers and caps every dimension of
// its input (header bytes, line length, nesting depth, part count), so a
// hostile or legacy message can be indexed and served without loading it.
// Malformed input never makes it fail: what it could not make sense of is
// reported as problem markers (Structure.Problems).
//
// Specifications: RFC 5322 (message format, dates), RFC 2045 (MIME
// headers, transfer encodings), RFC 2046 (multipart, message/rfc822),
// RFC 2047 (encoded words), RFC 2183 (Content-Disposition), RFC 2231
// (parameter continuations and charsets), RFC 2387 (multipart/related),
// RFC 3501/9051 §6.4.5 (IMAP part numbering), RFC 6532 (UTF-8 headers).
package convert
