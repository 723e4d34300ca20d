package dav

import (
	"errors"

	"github.com/davmail/davmail/mailbox"
	"github.com/rs/zerolog"
)

// Config wires a Handler. Zero limits take the defaults below; -1 means
// unlimited where that is allowed (go-message's convention).
type Config struct {
	Store  mailbox.Store
	Logger zerolog.Logger
	// Prefix is the URL prefix of the mailbox tree, "/exchange/".
	Prefix string

	// MaxMessageSize caps a stored message (PUT): default 25 MiB.
	MaxMessageSize int64
	// MaxResponseSize (Exchange's MaximumResponseSizeInBytes) caps every
	// response body: default 50 MiB.
	MaxResponseSize int64
	// MaxXMLBytes, MaxXMLElements and MaxXMLDepth cap XML request bodies.
	MaxXMLBytes    int64
	MaxXMLElements int
	MaxXMLDepth    int
	// Address returns a user's mail address; nil means none is known.
	// It makes /exchange/<address>/ an alias of /exchange/<user>/
	// (exchange-webdav.md §1.2) and answers Cmd=galfind (§2.5).
	Address func(user string) string
	// Submit sends mail put or moved into the submission URI; nil
	// refuses sending with 403.
	Submit Submitter
	// MaxDepthInfinity caps the responses of a Depth: infinity PROPFIND;
	// over it the request is refused with the RFC 4918 §9.1
	// propfind-finite-depth precondition. -1 refuses Depth: infinity always.
	MaxDepthInfinity int
	// AttachmentFolders shows, beside every message with attachments, a
	// virtual read-only collection "<message name>.attachments/" holding
	// them, for WebDAV clients that can only browse. Off by default:
	// mounts then see exactly the messages, and copies stay byte-exact.
	AttachmentFolders bool
	// RangeOverResponseCap lets a Range request fetch a piece, no larger
	// than MaxResponseSize, of an attachment larger than MaxResponseSize,
	// so a client can download it in pieces. Off by default: the cap then
	// refuses such attachments whole, as Exchange's
	// MaximumResponseSizeInBytes did.
	RangeOverResponseCap bool
}

// Defaults, each with its reason.
const (
	// 25 MiB: the common mail-server default (Postfix message_size_limit
	// is 10 MB, Exchange 2003's 10 MB, Gmail's 25 MB); raise as needed.
	DefaultMaxMessageSize = 25 << 20
	// 50 MiB: twice the message cap, so any storable message can be served
	// whole, while a legacy giant cannot be pulled in one response.
	DefaultMaxResponseSize = 50 << 20
	// 1 MiB of XML is ~5,000 properties or ~3,000 hrefs: more than any
	// real client's PROPFIND/PROPPATCH/B* body (DavMail's biggest is <4 KiB).
	DefaultMaxXMLBytes = 1 << 20
	// 20,000 elements and 32 levels bound parse work and stack; RFC 4918
	// bodies are at most ~6 levels deep before dead-property values.
	DefaultMaxXMLElements = 20000
	DefaultMaxXMLDepth    = 32
	// 10,000 responses: a whole small mailbox, never a 100k-message folder.
	DefaultMaxDepthInfinity = 10000
)

func (c *Config) withDefaults() error {
	if c.Store == nil {
		return errors.New("dav: Config.Store is nil")
	}
	if c.Prefix == "" {
		c.Prefix = "/exchange/"
	}
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	defi := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxMessageSize, DefaultMaxMessageSize)
	def(&c.MaxResponseSize, DefaultMaxResponseSize)
	def(&c.MaxXMLBytes, DefaultMaxXMLBytes)
	defi(&c.MaxXMLElements, DefaultMaxXMLElements)
	defi(&c.MaxXMLDepth, DefaultMaxXMLDepth)
	defi(&c.MaxDepthInfinity, DefaultMaxDepthInfinity)
	return nil
}
