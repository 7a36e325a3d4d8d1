package devdb

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Cluster is a private PostgreSQL cluster in a temporary folder, on a port of
// its own, for fault tests that stop, restart or kill PostgreSQL. It is never
// the shared server on 5432. As root its programs run as the postgres user.
type Cluster struct {
	Dir  string // the folder holding the data directory, socket and log
	Port int
	bin  string
	run  func(name string, args ...string) (string, error)
}

// StartCluster creates a cluster in a new temporary folder and starts it on a
// free loopback port. Stop it with Destroy.
func StartCluster(ctx context.Context) (*Cluster, error) {
	bin, err := findBinDir()
	if err != nil {
		return nil, err
	}
	run, err := runner()
	if err != nil {
		return nil, err
	}
	// Directly under the temporary folder: as root the postgres user must be able
	// to reach it, which a test's own (0700, root-owned) TempDir would not allow.
	dir, err := os.MkdirTemp("", "repcue-pg-")
	if err != nil {
		return nil, err
	}
	if err := prepareDir(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &Cluster{Dir: dir, bin: bin, run: run}
	data := filepath.Join(dir, "pgdata")
	if out, err := run(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	if c.Port, err = freePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		c.Destroy()
		return nil, err
	}
	return c, nil
}

// URL is the connection URL of database name on the cluster.
func (c *Cluster) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, name)
}

// Server is the cluster as a Server, to create databases on it.
func (c *Cluster) Server() Server {
	u, _ := url.Parse(c.URL("postgres"))
	return Server{base: u, Source: c.Dir}
}

func (c *Cluster) pgCtl(args ...string) error {
	data := filepath.Join(c.Dir, "pgdata")
	out, err := c.run(filepath.Join(c.bin, "pg_ctl"), append([]string{"-D", data}, args...)...)
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %v: %s (see %s)", strings.Join(args, " "), err, out, filepath.Join(c.Dir, "postgres.log"))
	}
	return nil
}

func (c *Cluster) options() string {
	return fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off", c.Port, c.Dir)
}

// Start starts the (stopped) cluster and waits until it answers.
func (c *Cluster) Start(ctx context.Context) error {
	if err := c.pgCtl("-o", c.options(), "-l", filepath.Join(c.Dir, "postgres.log"), "-w", "-t", "60", "start"); err != nil {
		return err
	}
	return c.waitAnswers(ctx)
}

// Stop stops the cluster: mode is "smart", "fast" (roll back and disconnect
// every session) or "immediate" (abort without a clean shutdown, recovery at
// the next start).
func (c *Cluster) Stop(mode string) error {
	return c.pgCtl("-m", mode, "-w", "-t", "60", "stop")
}

// Restart stops the cluster with mode and starts it again.
func (c *Cluster) Restart(ctx context.Context, mode string) error {
	if err := c.pgCtl("-m", mode, "-o", c.options(), "-l", filepath.Join(c.Dir, "postgres.log"), "-w", "-t", "60", "restart"); err != nil {
		return err
	}
	return c.waitAnswers(ctx)
}

// Destroy stops the cluster at once and removes its folder.
func (c *Cluster) Destroy() {
	if _, err := os.Stat(filepath.Join(c.Dir, "pgdata", "postmaster.pid")); err == nil {
		_ = c.Stop("immediate")
	}
	os.RemoveAll(c.Dir)
}

func (c *Cluster) waitAnswers(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for !answers(ctx, c.URL("postgres")) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster in %s does not answer on port %d", c.Dir, c.Port)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
