// Package migrations holds the numbered SQL files that build repcue's schema and
// install its exercise library. They are embedded in the binary and applied in
// order by `repcue migrate` (see internal/postgres).
package migrations

import "embed"

// FS holds every NNNN_name.sql file of this folder.
//
//go:embed *.sql
var FS embed.FS
