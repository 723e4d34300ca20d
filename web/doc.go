// Package web is davmail's browser UI, a light Outlook Web Access: log in
// with the forms-login session the Exchange dialect uses (one session for
// the UI and WebDAV), browse the folder tree, page, sort and search a
// folder from the index, read a message with its HTML sanitized
// (convert.RenderBody) inside a sandboxed iframe under a strict
// Content-Security-Policy, download attachments through the same limits as
// WebDAV, mark, flag, move and delete messages, and, for admins, see the
// configured limits and who used the server in the last hour.
//
// Pages are html/template with their assets embedded (//go:embed), so a
// plain `go build` gives a working UI. JavaScript is optional: it only
// resizes the message frame and marks an opened message read (with the
// page's CSRF token); everything else is links and forms.
//
// Security:
//   - every state change is a POST carrying a CSRF token bound to the
//     session (an HMAC of the session id under a per-process key) and is
//     refused when the browser marks it cross-origin;
//   - the session cookies are auth.SetSessionCookies': HttpOnly,
//     SameSite=Lax, Secure under TLS;
//   - no message content reaches a page outside the sanitizer: subjects,
//     names and addresses are text escaped by html/template, bodies go
//     through convert.RenderBody into a separate document served with
//     "sandbox" and "default-src 'none'" and shown in an iframe whose
//     sandbox attribute omits allow-scripts;
//   - attachments are served with Content-Disposition attachment (inline
//     only for raster images referenced by cid:), nosniff and a sandboxing
//     CSP.
//
// Handlers return errors; one function (Handler.fail) turns them into
// statuses and pages.
package web
