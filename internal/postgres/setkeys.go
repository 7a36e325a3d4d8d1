package postgres

import (
	"bytes"
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
)

// errLiveSet marks the conflict of starting a set while one is live.
var errLiveSet = errors.New("sets_one_live_per_athlete")

// withLiveSet adds the id of the athlete's live set to the conflict of
// starting another (the problem member live_set_id). If that set has ended in
// the meantime the conflict goes without it.
func (s *Store) withLiveSet(ctx context.Context, athleteID uuid.UUID, err error) error {
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.CodeConflict || !errors.Is(de.Err, errLiveSet) {
		return err
	}
	var id uuid.UUID
	if s.pool.QueryRow(ctx, `SELECT id FROM sets WHERE athlete_id = $1 AND status = 'live'`, athleteID).Scan(&id) == nil {
		with := *de
		with.LiveSetID = id.String()
		return &with
	}
	return err
}

// StartKey is the Idempotency-Key of a POST /v1/sets and the hash of the
// request it came with.
type StartKey struct {
	Key         string
	RequestHash []byte
}

// CreateSetOnce is CreateSet under an idempotency key of the athlete: the
// first start under the key creates the set; a start under the same key with
// the same request within 24 hours returns that set as it is now (replayed
// true), and one with another request is a conflict. Only a start that
// succeeded is remembered. Two starts under one key at the same moment are
// serialised by the key's row: the second waits for the first and replays it.
func (s *Store) CreateSetOnce(ctx context.Context, n NewSet, key StartKey) (set domain.Set, replayed bool, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM set_start_keys WHERE athlete_id = $1 AND created_at < now() - interval '24 hours'`, n.AthleteID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO set_start_keys (athlete_id, key, request_hash) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			n.AthleteID, key.Key, key.RequestHash)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var hash []byte
			var setID uuid.UUID
			if err := tx.QueryRow(ctx, `SELECT request_hash, set_id FROM set_start_keys WHERE athlete_id = $1 AND key = $2`,
				n.AthleteID, key.Key).Scan(&hash, &setID); err != nil {
				return err
			}
			if !bytes.Equal(hash, key.RequestHash) {
				return &domain.Error{Code: domain.CodeConflict, Field: "Idempotency-Key",
					Message: "this Idempotency-Key started a set with another request; use a new key for a new start"}
			}
			replayed = true
			set, err = scanSet(tx.QueryRow(ctx, `SELECT `+setColumns+` FROM sets s JOIN variations v ON v.id = s.variation_id WHERE s.id = $1`, setID))
			return err
		}
		if set, err = createSet(ctx, tx, n); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE set_start_keys SET set_id = $3 WHERE athlete_id = $1 AND key = $2`, n.AthleteID, key.Key, set.ID)
		return err
	})
	return set, replayed, s.withLiveSet(ctx, n.AthleteID, translate(err, "set"))
}
