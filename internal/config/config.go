// Package config reads repcue's settings from the environment once, at start,
// into one typed struct. Every setting is documented in .env.example.
package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of the server.
type Config struct {
	DatabaseURL    string         // DATABASE_URL
	Addr           string         // REPCUE_ADDR
	MetricsAddr    string         // REPCUE_METRICS_ADDR; empty: /metrics on Addr
	NATSURL        string         // REPCUE_NATS_URL; empty means a single node
	AllowedOrigins []string       // REPCUE_ALLOWED_ORIGINS, each normalised by NormalizeOrigin
	TrustedProxies []netip.Prefix // REPCUE_TRUSTED_PROXIES; empty: trust none
	JWTKeyFile     string         // REPCUE_JWT_KEY_FILE
	Dev            bool           // REPCUE_DEV: development mode (a generated signing key is allowed)
	HoldTick       time.Duration  // REPCUE_HOLD_TICK
	Issuer         string         // REPCUE_JWT_ISSUER
	Audience       string         // REPCUE_JWT_AUDIENCE
	AccessTTL      time.Duration  // REPCUE_ACCESS_TTL
	RefreshTTL     time.Duration  // REPCUE_REFRESH_TTL
	HashWorkers    int            // REPCUE_HASH_WORKERS: password hashes running at once
	LogLevel       string         // REPCUE_LOG_LEVEL
	ShutdownGrace  time.Duration  // REPCUE_SHUTDOWN_GRACE
	Push           Push           // REPCUE_VAPID_*, REPCUE_PUSH_* (push.go)
	SMTPURL        string         // REPCUE_SMTP_URL; empty: mail is off (logged instead, in development only)
	MailFrom       string         // REPCUE_MAIL_FROM
	PublicURL      string         // REPCUE_PUBLIC_URL: the base of the links mail carries
}

// FromEnv reads and validates the configuration.
func FromEnv() (Config, error) {
	return parse(os.Getenv)
}

func parse(get func(string) string) (Config, error) {
	c := Config{
		DatabaseURL: get("DATABASE_URL"),
		Addr:        orDefault(get("REPCUE_ADDR"), ":8080"),
		MetricsAddr: strings.TrimSpace(get("REPCUE_METRICS_ADDR")),
		NATSURL:     get("REPCUE_NATS_URL"),
		JWTKeyFile:  get("REPCUE_JWT_KEY_FILE"),
		Issuer:      orDefault(get("REPCUE_JWT_ISSUER"), "repcue"),
		Audience:    orDefault(get("REPCUE_JWT_AUDIENCE"), "repcue-api"),
		LogLevel:    orDefault(get("REPCUE_LOG_LEVEL"), "info"),
		SMTPURL:     strings.TrimSpace(get("REPCUE_SMTP_URL")),
		MailFrom:    strings.TrimSpace(orDefault(get("REPCUE_MAIL_FROM"), "repcue <no-reply@localhost>")),
		PublicURL:   strings.TrimRight(strings.TrimSpace(orDefault(get("REPCUE_PUBLIC_URL"), "http://localhost:8080")), "/"),
	}
	var errs []string
	dur := func(name, def string, min, max time.Duration) time.Duration {
		d, err := time.ParseDuration(orDefault(get(name), def))
		if err != nil || d < min || d > max {
			errs = append(errs, fmt.Sprintf("%s must be a duration between %s and %s", name, min, max))
		}
		return d
	}
	c.HoldTick = dur("REPCUE_HOLD_TICK", "250ms", 10*time.Millisecond, 10*time.Second)
	c.AccessTTL = dur("REPCUE_ACCESS_TTL", "15m", time.Minute, time.Hour)
	c.RefreshTTL = dur("REPCUE_REFRESH_TTL", "720h", time.Hour, 90*24*time.Hour)
	c.ShutdownGrace = dur("REPCUE_SHUTDOWN_GRACE", "10s", time.Second, 5*time.Minute)

	workers, err := strconv.Atoi(orDefault(get("REPCUE_HASH_WORKERS"), "2"))
	if err != nil || workers < 1 || workers > 64 {
		errs = append(errs, "REPCUE_HASH_WORKERS must be an integer from 1 to 64")
	}
	c.HashWorkers = workers

	if v := strings.TrimSpace(get("REPCUE_DEV")); v != "" {
		dev, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, "REPCUE_DEV must be true or false")
		}
		c.Dev = dev
	}

	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Sprintf("REPCUE_METRICS_ADDR: %q is not a listen address like 127.0.0.1:9090", c.MetricsAddr))
		} else if c.MetricsAddr == c.Addr {
			errs = append(errs, "REPCUE_METRICS_ADDR must differ from REPCUE_ADDR (leave it empty to serve /metrics on the main listener)")
		}
	}

	for _, o := range strings.Split(get("REPCUE_ALLOWED_ORIGINS"), ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		n, ok := NormalizeOrigin(o)
		if !ok {
			errs = append(errs, fmt.Sprintf("REPCUE_ALLOWED_ORIGINS: %q is not an origin like https://coach.example.com", o))
			continue
		}
		c.AllowedOrigins = append(c.AllowedOrigins, n)
	}

	for _, p := range strings.Split(get("REPCUE_TRUSTED_PROXIES"), ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		prefix, ok := parsePrefix(p)
		if !ok {
			errs = append(errs, fmt.Sprintf("REPCUE_TRUSTED_PROXIES: %q is not a CIDR like 10.0.0.0/8 or an address", p))
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, prefix)
	}

	var pushErrs []string
	c.Push, pushErrs = parsePush(get)
	errs = append(errs, pushErrs...)
	if c.SMTPURL != "" {
		u, err := url.Parse(c.SMTPURL)
		if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
			errs = append(errs, "REPCUE_SMTP_URL must look like smtp://user:pass@host:port or smtps://user:pass@host:port")
		}
	}
	if _, err := mail.ParseAddress(c.MailFrom); err != nil {
		errs = append(errs, "REPCUE_MAIL_FROM must be an address like \"repcue <no-reply@example.com>\"")
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, "REPCUE_PUBLIC_URL must be an http(s) URL like https://app.example.com")
	}

	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, "REPCUE_LOG_LEVEL must be debug, info, warn or error")
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

// parsePrefix reads a CIDR, or a bare address as the network of that address
// alone. IPv4-mapped IPv6 forms are taken as the IPv4 they carry, since client
// addresses are compared in that form too.
func parsePrefix(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

// NormalizeOrigin returns an Origin in the one form it is compared in:
// scheme://host[:port], lower case, without a default port (80 for http, 443
// for https) or a trailing slash. It reports false for anything that is not an
// http(s) origin.
func NormalizeOrigin(s string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery ||
		(u.Path != "" && u.Path != "/") {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (scheme != "http" && scheme != "https") || host == "" {
		return "", false
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", false
		}
		port = strconv.Itoa(n)
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") { // an IPv6 literal keeps its brackets
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, true
}

// Masked returns the settings for the start-up log with secrets hidden.
func (c Config) Masked() map[string]any {
	proxies := make([]string, len(c.TrustedProxies))
	for i, p := range c.TrustedProxies {
		proxies[i] = p.String()
	}
	return map[string]any{
		"database_url":    MaskDSN(c.DatabaseURL),
		"addr":            c.Addr,
		"metrics_addr":    c.MetricsAddr,
		"nats_url":        MaskNATSURL(c.NATSURL),
		"allowed_origins": c.AllowedOrigins,
		"trusted_proxies": proxies,
		"jwt_key_file":    c.JWTKeyFile,
		"dev":             c.Dev,
		"hold_tick":       c.HoldTick.String(),
		"access_ttl":      c.AccessTTL.String(),
		"refresh_ttl":     c.RefreshTTL.String(),
		"hash_workers":    c.HashWorkers,
		"push":            c.Push,
		"smtp_url":        MaskURL(c.SMTPURL),
		"mail_from":       c.MailFrom,
		"public_url":      c.PublicURL,
	}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
