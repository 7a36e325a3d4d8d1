package postgres

import (
	"context"
	"time"
)

// ReserveAttempt counts one attempt for (scope, key) in a single atomic
// statement, so that concurrent attempts on one key, on any node, are counted
// one after the other. It is refused (granted false, nothing counted) while the
// key must wait. Otherwise the attempt is counted up front, as if it will fail:
// from the free-th counted attempt on, the key must wait base, doubling with
// each further attempt up to max. An entry idle for forget starts over.
// until is the end of the wait the key is under (zero: none).
func (s *Store) ReserveAttempt(ctx context.Context, scope, key string, now time.Time, free int, base, max, forget time.Duration) (granted bool, failures int, until time.Time, err error) {
	var u *time.Time
	err = s.pool.QueryRow(ctx, `
		INSERT INTO auth_throttle AS t (scope, key, failures, until, last_at, granted)
		VALUES ($1, $2, 1,
		        CASE WHEN 1 >= $4::int THEN $3::timestamptz + least($6::interval, $5::interval * power(2::float8, 1 - $4::int)) END,
		        $3::timestamptz, true)
		ON CONFLICT (scope, key) DO UPDATE SET (failures, until, last_at, granted) = (
			SELECT n,
			       CASE WHEN blocked THEN t.until
			            WHEN n >= $4::int THEN $3::timestamptz + least($6::interval, $5::interval * power(2::float8, least(n - $4::int, 40)))
			       END,
			       CASE WHEN blocked THEN t.last_at ELSE $3::timestamptz END,
			       NOT blocked
			FROM (SELECT blocked, CASE WHEN blocked THEN t.failures WHEN live THEN t.failures + 1 ELSE 1 END AS n
			      FROM (SELECT t.last_at >= $3::timestamptz - $7::interval AS live,
			                   t.last_at >= $3::timestamptz - $7::interval AND coalesce(t.until > $3::timestamptz, false) AS blocked) flags) counted)
		RETURNING granted, failures, until`,
		scope, key, now, free, base, max, forget).Scan(&granted, &failures, &u)
	if err != nil {
		return false, 0, time.Time{}, translate(err, "throttle entry")
	}
	if u != nil {
		until = *u
	}
	return granted, failures, until, nil
}

// ReleaseAttempt takes back a reserved attempt that turned out not to be a
// failure. until is the wait that attempt set (zero: none): it is lifted only if
// no later attempt has set another.
func (s *Store) ReleaseAttempt(ctx context.Context, scope, key string, until time.Time) error {
	var u *time.Time
	if !until.IsZero() {
		u = &until
	}
	_, err := s.pool.Exec(ctx, `
		UPDATE auth_throttle SET failures = greatest(failures - 1, 0),
		       until = CASE WHEN until = $3 THEN NULL ELSE until END
		WHERE scope = $1 AND key = $2`, scope, key, u)
	return translate(err, "throttle entry")
}

// ClearAttempts forgets every attempt of (scope, key): a success.
func (s *Store) ClearAttempts(ctx context.Context, scope, key string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM auth_throttle WHERE scope = $1 AND key = $2`, scope, key)
	return translate(err, "throttle entry")
}

// SweepAttempts bounds a scope's entries: it drops those idle since before
// idleBefore, then, beyond keep entries, the least recently used, those not
// under a wait first. It reports how many it dropped.
func (s *Store) SweepAttempts(ctx context.Context, scope string, now, idleBefore time.Time, keep int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM auth_throttle WHERE scope = $1 AND last_at < $2`, scope, idleBefore)
	if err != nil {
		return 0, translate(err, "throttle entry")
	}
	dropped := tag.RowsAffected()
	tag, err = s.pool.Exec(ctx, `
		DELETE FROM auth_throttle WHERE scope = $1 AND key IN (
			SELECT key FROM auth_throttle WHERE scope = $1
			ORDER BY coalesce(until > $2, false), last_at
			LIMIT greatest((SELECT count(*) FROM auth_throttle WHERE scope = $1) - $3, 0))`, scope, now, keep)
	if err != nil {
		return dropped, translate(err, "throttle entry")
	}
	return dropped + tag.RowsAffected(), nil
}
