// Package webapp holds the reference web clients — the coach's gym-floor
// dashboard, the athlete simulator and the admin cue editor — as plain ES
// modules embedded in the binary and served under /app/. They use the public
// API only, exactly as a phone app or a tablet would.
package webapp

import (
	"embed"
	"io/fs"
	"mime"
	"path"
	"strings"
)

//go:embed static
var files embed.FS

// Static is the tree of the web clients' files (index.html at its root).
var Static, _ = fs.Sub(files, "static")

// ContentSecurityPolicy allows the pages nothing but their own origin: no
// inline script or style, no third-party request, no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Headers are set on every response under /app/.
var Headers = map[string]string{
	"Content-Security-Policy":      ContentSecurityPolicy,
	"X-Content-Type-Options":       "nosniff",
	"X-Frame-Options":              "DENY",
	"Referrer-Policy":              "no-referrer",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
	"Permissions-Policy":           "camera=(), microphone=(), geolocation=(), payment=()",
	"Cache-Control":                "no-cache",
}

// File returns the file for a path under /app/ ("" or "/" is index.html) and
// its content type. Only plain file names are served: no directories, no dot
// files, no "..".
func File(name string) (body []byte, contentType string, ok bool) {
	name = strings.TrimPrefix(name, "/")
	if name == "" {
		name = "index.html"
	}
	if strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") || !fs.ValidPath(name) {
		return nil, "", false
	}
	b, err := fs.ReadFile(Static, name)
	if err != nil {
		return nil, "", false
	}
	ct := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".js":
		ct = "text/javascript; charset=utf-8"
	case ".html":
		ct = "text/html; charset=utf-8"
	case ".css":
		ct = "text/css; charset=utf-8"
	case ".svg":
		ct = "image/svg+xml"
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	return b, ct, true
}
