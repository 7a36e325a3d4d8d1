package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/repcue/repcue/internal/auth"
	"github.com/repcue/repcue/internal/config"
	"github.com/repcue/repcue/internal/domain"
)

// LoadPassword is the password of every account `repcue seed --load` makes.
const LoadPassword = "repcue load password"

// loadFile is what `repcue seed --load` writes for the load generator: each
// account with an access token (signed with the server's key), each athlete
// with its live set and the index of its coach.
type loadFile struct {
	Run       string        `json:"run"`
	ExpiresAt time.Time     `json:"expires_at"`
	Athletes  []loadAccount `json:"athletes"`
	Coaches   []loadAccount `json:"coaches"`
}

type loadAccount struct {
	UserID string `json:"user_id"`
	Token  string `json:"token"`
	SetID  string `json:"set_id,omitempty"`
	Coach  int    `json:"coach"`
}

// seedLoad writes N athletes with live sets and one coach per coach-every of
// them straight into the database, and their access tokens into a file.
func seedLoad(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("seed --load", flag.ContinueOnError)
	n := fs.Int("load", 0, "athletes to make, each with a live set (load testing)")
	every := fs.Int("coach-every", 10, "one coach per this many athletes, linked to them")
	out := fs.String("out", "repcue-load.json", "where to write the accounts and their access tokens")
	hold := fs.Int("hold-ms", 1000, "pause_hold_ms of each set")
	variation := fs.String("variation", "barbell-hip-thrust", "variation slug of each set")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > 100000 || *every < 1 || *every > 100 || *hold < 0 || *hold > 60000 {
		return errors.New("usage: repcue seed --load N (1–100000) [--coach-every 1–100] [--hold-ms MS] [--variation SLUG] [--out FILE]")
	}
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	key, err := signingKey(cfg, newLogger(cfg.LogLevel))
	if err != nil {
		return err
	}
	if cfg.JWTKeyFile == "" {
		return errors.New("seed --load needs REPCUE_JWT_KEY_FILE: the tokens must be signed with the server's key")
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Pool().Close()
	start := time.Now()
	hash, err := auth.NewHasher(1).Hash(ctx, LoadPassword) // one hash for every load account
	if err != nil {
		return err
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	athletes, coaches, err := store.SeedLoad(ctx, run, *n, *every, hash, *variation, *hold)
	if err != nil {
		return err
	}
	tokens := auth.NewTokens(key, cfg.Issuer, cfg.Audience, cfg.AccessTTL, nil)
	f := loadFile{Run: run, ExpiresAt: time.Now().Add(cfg.AccessTTL)}
	for _, c := range coaches {
		tok, err := tokens.Issue(c.UserID, domain.RoleCoach, c.SessionID)
		if err != nil {
			return err
		}
		f.Coaches = append(f.Coaches, loadAccount{UserID: c.UserID.String(), Token: tok, Coach: len(f.Coaches)})
	}
	for i, a := range athletes {
		tok, err := tokens.Issue(a.UserID, domain.RoleAthlete, a.SessionID)
		if err != nil {
			return err
		}
		f.Athletes = append(f.Athletes, loadAccount{UserID: a.UserID.String(), Token: tok, SetID: a.SetID.String(), Coach: i / *every})
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, b, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d athletes with live sets and %d coaches (run %s) in %s; tokens valid until %s in %s (password of every account: %q)\n",
		len(athletes), len(coaches), run, time.Since(start).Round(time.Millisecond), f.ExpiresAt.Format(time.RFC3339), *out, LoadPassword)
	return nil
}
