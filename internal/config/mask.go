package config

import (
	"net/url"
	"strings"
)

const (
	masked = "xxxxx"
	// unparsable stands in for a connection string that cannot be read: which
	// part of it is the password is unknown, so none of it is shown.
	unparsable = "(unparsable; not shown)"
)

// MaskDSN returns a PostgreSQL connection string fit for a log: a URL
// (postgres://…) or keyword/value settings (host=… password=…) with every
// password hidden. A string that cannot be parsed is not shown at all.
func MaskDSN(s string) string {
	if strings.TrimSpace(s) == "" {
		return ""
	}
	if strings.Contains(s, "://") {
		return MaskURL(s)
	}
	out, ok := maskKeywordValue(s)
	if !ok {
		return unparsable
	}
	return out
}

// MaskURL hides the password of a connection URL, in its user information and
// in its query (password=, sslpassword=). A URL that cannot be parsed is not
// shown at all.
func MaskURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return unparsable
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), masked)
		}
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			return unparsable
		}
		for k := range q {
			if secretKey(k) {
				q[k] = []string{masked}
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// MaskNATSURL hides the credentials of a NATS server list (comma-separated
// URLs). A user name alone is a NATS token, so it is hidden too.
func MaskNATSURL(s string) string {
	if s == "" {
		return ""
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		u, err := url.Parse(p)
		if err != nil || u.Opaque != "" {
			return unparsable
		}
		if u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), masked)
			} else {
				u.User = url.User(masked)
			}
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

func secretKey(k string) bool {
	k = strings.ToLower(k)
	return k == "password" || k == "sslpassword"
}

// maskKeywordValue rewrites libpq keyword/value settings (key=value pairs
// separated by spaces; a value may be single-quoted, with \' and \\ escapes)
// with secret values hidden. It reports false when s is not such settings.
func maskKeywordValue(s string) (string, bool) {
	var out []string
	i := 0
	skipSpace := func() {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
	}
	for {
		skipSpace()
		if i == len(s) {
			break
		}
		start := i
		for i < len(s) && s[i] != '=' && !isSpace(s[i]) {
			i++
		}
		key := s[start:i]
		skipSpace()
		if key == "" || i == len(s) || s[i] != '=' {
			return "", false
		}
		i++ // '='
		skipSpace()
		start = i
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				if s[i] == '\\' {
					i += 2
					continue
				}
				if s[i] == '\'' {
					closed = true
					i++
					break
				}
				i++
			}
			if !closed || i > len(s) {
				return "", false
			}
		} else {
			for i < len(s) && !isSpace(s[i]) {
				if s[i] == '\\' {
					i++
				}
				i++
			}
			if i > len(s) {
				return "", false
			}
		}
		value := s[start:i]
		if secretKey(key) {
			value = masked
		}
		out = append(out, key+"="+value)
	}
	if len(out) == 0 {
		return "", false
	}
	return strings.Join(out, " "), true
}

func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' || b == '\v'
}
