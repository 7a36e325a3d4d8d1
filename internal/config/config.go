// Package config reads repcue's settings from the environment once, at start,
// into one typed struct. Every setting is documented in .env.example.
package config

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of the server.
type Config struct {
	DatabaseURL    string        // DATABASE_URL
	Addr           string        // REPCUE_ADDR
	NATSURL        string        // REPCUE_NATS_URL; empty means a single node
	AllowedOrigins []string      // REPCUE_ALLOWED_ORIGINS
	JWTKeyFile     string        // REPCUE_JWT_KEY_FILE
	HoldTick       time.Duration // REPCUE_HOLD_TICK
	Issuer         string        // REPCUE_JWT_ISSUER
	Audience       string        // REPCUE_JWT_AUDIENCE
	AccessTTL      time.Duration // REPCUE_ACCESS_TTL
	RefreshTTL     time.Duration // REPCUE_REFRESH_TTL
	HashWorkers    int           // REPCUE_HASH_WORKERS: password hashes running at once
	LogLevel       string        // REPCUE_LOG_LEVEL
	ShutdownGrace  time.Duration // REPCUE_SHUTDOWN_GRACE
	Push           Push          // REPCUE_VAPID_*, REPCUE_PUSH_* (push.go)
}

// FromEnv reads and validates the configuration.
func FromEnv() (Config, error) {
	return parse(os.Getenv)
}

func parse(get func(string) string) (Config, error) {
	c := Config{
		DatabaseURL: get("DATABASE_URL"),
		Addr:        orDefault(get("REPCUE_ADDR"), ":8080"),
		NATSURL:     get("REPCUE_NATS_URL"),
		JWTKeyFile:  get("REPCUE_JWT_KEY_FILE"),
		Issuer:      orDefault(get("REPCUE_JWT_ISSUER"), "repcue"),
		Audience:    orDefault(get("REPCUE_JWT_AUDIENCE"), "repcue-api"),
		LogLevel:    orDefault(get("REPCUE_LOG_LEVEL"), "info"),
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

	for _, o := range strings.Split(get("REPCUE_ALLOWED_ORIGINS"), ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			errs = append(errs, fmt.Sprintf("REPCUE_ALLOWED_ORIGINS: %q is not an origin like https://coach.example.com", o))
			continue
		}
		c.AllowedOrigins = append(c.AllowedOrigins, u.Scheme+"://"+u.Host)
	}
	var pushErrs []string
	c.Push, pushErrs = parsePush(get)
	errs = append(errs, pushErrs...)
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

// Masked returns the settings for the start-up log with secrets hidden.
func (c Config) Masked() map[string]any {
	return map[string]any{
		"database_url":    MaskURL(c.DatabaseURL),
		"addr":            c.Addr,
		"nats_url":        MaskURL(c.NATSURL),
		"allowed_origins": c.AllowedOrigins,
		"jwt_key_file":    c.JWTKeyFile,
		"hold_tick":       c.HoldTick.String(),
		"access_ttl":      c.AccessTTL.String(),
		"refresh_ttl":     c.RefreshTTL.String(),
		"hash_workers":    c.HashWorkers,
		"push":            c.Push,
	}
}

// MaskURL hides the password of a connection URL.
func MaskURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
