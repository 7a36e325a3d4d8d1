// Package devdb finds a PostgreSQL server for development and tests, in this
// order: DATABASE_URL; a server answering on 127.0.0.1:5432; a throwaway cluster
// started with the machine's initdb and pg_ctl in .devdb/ of the checkout (or a
// temporary folder when the checkout cannot be used). It is never used in
// production, where DATABASE_URL is required.
package devdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a PostgreSQL server the caller may create databases on.
type Server struct {
	base   *url.URL
	Source string // "DATABASE_URL", "127.0.0.1:5432" or the throwaway cluster's folder
}

// URL returns the connection URL of database name on the server.
func (s Server) URL(name string) string {
	u := *s.base
	u.Path = "/" + name
	return u.String()
}

// DatabaseName is the database name of the server's base URL.
func (s Server) DatabaseName() string { return strings.TrimPrefix(s.base.Path, "/") }

// Find locates or starts a server. logf receives progress lines.
func Find(ctx context.Context, logf func(string, ...any)) (Server, error) {
	if env := os.Getenv("DATABASE_URL"); env != "" {
		u, err := url.Parse(env)
		if err != nil {
			return Server{}, fmt.Errorf("DATABASE_URL: %w", err)
		}
		return Server{base: u, Source: "DATABASE_URL"}, nil
	}
	local, _ := url.Parse("postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	// REPCUE_DEVDB_THROWAWAY=1 skips the local server (to exercise the throwaway path).
	if os.Getenv("REPCUE_DEVDB_THROWAWAY") == "" && answers(ctx, local.String()) {
		return Server{base: local, Source: "127.0.0.1:5432"}, nil
	}
	return startThrowaway(ctx, logf)
}

// EnsureDatabase creates database name on the server unless it exists.
func (s Server) EnsureDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, s.URL(s.adminDB()))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) && pgErr.SQLState() == "42P04" { // created meanwhile
		return nil
	}
	return err
}

func (s Server) adminDB() string {
	if s.Source == "DATABASE_URL" {
		return s.DatabaseName()
	}
	return "postgres"
}

func answers(ctx context.Context, dsn string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return false
	}
	conn.Close(ctx)
	return true
}

const installHint = "no PostgreSQL found: set DATABASE_URL, start a server on 127.0.0.1:5432, " +
	"or install PostgreSQL's server programs (initdb, pg_ctl) — on Debian/Ubuntu: apt-get install postgresql"

func startThrowaway(ctx context.Context, logf func(string, ...any)) (Server, error) {
	bin, err := findBinDir()
	if err != nil {
		return Server{}, err
	}
	dir, err := clusterDir()
	if err != nil {
		return Server{}, err
	}
	unlock, err := lockFile(filepath.Join(dir, "lock"))
	if err != nil {
		return Server{}, err
	}
	defer unlock()

	data := filepath.Join(dir, "pgdata")
	run, err := runner()
	if err != nil {
		return Server{}, err
	}
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		logf("devdb: creating a throwaway PostgreSQL cluster in %s", data)
		if out, err := run(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
			return Server{}, fmt.Errorf("initdb: %v: %s", err, out)
		}
	}
	port := 0
	if b, err := os.ReadFile(filepath.Join(dir, "port")); err == nil {
		port, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	base := func(p int) *url.URL {
		u, _ := url.Parse(fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p))
		return u
	}
	if port > 0 && answers(ctx, base(port).String()) {
		return Server{base: base(port), Source: dir}, nil
	}
	if port == 0 || !portFree(port) {
		if port, err = freePort(); err != nil {
			return Server{}, err
		}
	}
	logf("devdb: starting the throwaway cluster on 127.0.0.1:%d", port)
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off", port, dir)
	if out, err := run(filepath.Join(bin, "pg_ctl"), "-D", data, "-o", opts, "-l", filepath.Join(dir, "postgres.log"), "-w", "-t", "60", "start"); err != nil {
		return Server{}, fmt.Errorf("pg_ctl start: %v: %s (see %s)", err, out, filepath.Join(dir, "postgres.log"))
	}
	if err := os.WriteFile(filepath.Join(dir, "port"), []byte(strconv.Itoa(port)), 0o644); err != nil {
		return Server{}, err
	}
	if !answers(ctx, base(port).String()) {
		return Server{}, fmt.Errorf("the throwaway cluster in %s started but does not answer on port %d", dir, port)
	}
	return Server{base: base(port), Source: dir}, nil
}

func findBinDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- { // newest version first
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", errors.New(installHint)
}

// clusterDir is .devdb/ at the top of the checkout, or a temporary folder when
// that cannot be written or (as root) cannot be reached by the postgres user.
func clusterDir() (string, error) {
	if top, err := checkoutTop(); err == nil {
		dir := filepath.Join(top, ".devdb")
		if err := prepareDir(dir); err == nil {
			return dir, nil
		}
	}
	dir := filepath.Join(os.TempDir(), "repcue-devdb")
	if err := prepareDir(dir); err != nil {
		return "", fmt.Errorf("cannot prepare a folder for a throwaway cluster: %w", err)
	}
	return dir, nil
}

func checkoutTop() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the checkout")
		}
		dir = parent
	}
}

func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return nil
	}
	// PostgreSQL refuses to run as root: the cluster belongs to the postgres user,
	// who must be able to reach the folder.
	uid, gid, err := postgresUser()
	if err != nil {
		return err
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return err
	}
	probe := exec.Command("runuser", "-u", "postgres", "--", "test", "-w", dir)
	if err := probe.Run(); err != nil {
		return fmt.Errorf("the postgres user cannot write %s", dir)
	}
	return nil
}

func postgresUser() (int, int, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return 0, 0, fmt.Errorf("running as root needs a 'postgres' user to own the throwaway cluster: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid, nil
}

// runner runs a PostgreSQL program as the current user, or as postgres when root.
func runner() (func(name string, args ...string) (string, error), error) {
	if os.Geteuid() != 0 {
		return func(name string, args ...string) (string, error) {
			out, err := exec.Command(name, args...).CombinedOutput()
			return string(out), err
		}, nil
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		return nil, errors.New("running as root needs runuser (util-linux) to start PostgreSQL as the postgres user")
	}
	return func(name string, args ...string) (string, error) {
		cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
		cmd.Dir = "/"
		out, err := cmd.CombinedOutput()
		return string(out), err
	}, nil
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
