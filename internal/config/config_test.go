package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestMaskDSNHidesEveryPassword(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"postgres://app:s3cret@db.internal:5432/repcue?sslmode=require", "postgres://app:xxxxx@db.internal:5432/repcue?sslmode=require"},
		{"postgres://app@db/repcue?password=s3cret&sslmode=disable", "postgres://app@db/repcue?password=xxxxx&sslmode=disable"},
		{"postgresql://app@db/repcue?sslpassword=s3cret", "postgresql://app@db/repcue?sslpassword=xxxxx"},
		{"postgres://app@db/repcue", "postgres://app@db/repcue"},
		{"host=db user=app password=s3cret dbname=repcue", "host=db user=app password=xxxxx dbname=repcue"},
		{"host=db   password = s3cret\tuser=app", "host=db password=xxxxx user=app"},
		{`host=db password='s3 cret \' still' user=app`, "host=db password=xxxxx user=app"},
		{`host=db PASSWORD=s3cret sslpassword=k3y`, "host=db PASSWORD=xxxxx sslpassword=xxxxx"},
		{`host=db password=s3\ cret user=app`, "host=db password=xxxxx user=app"},
		// Unparsable: nothing of it is shown, only that it could not be read.
		{"postgres://app:s3cret@db:5432/repcue%zz", unparsable},
		{"postgres://app:s3cret@[::1/repcue", unparsable},
		{"host=db password='s3cret", unparsable},
		{"s3cret", unparsable},
		{"host=db s3cret", unparsable},
		{"password=s3cret\\", unparsable},
	} {
		got := MaskDSN(tc.in)
		if got != tc.want {
			t.Errorf("MaskDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(got, "s3") || strings.Contains(got, "k3y") {
			t.Errorf("MaskDSN(%q) = %q shows the secret", tc.in, got)
		}
	}
}

func TestMaskNATSURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://u:s3cret@a:4222, nats://b:4222", "nats://u:xxxxx@a:4222,nats://b:4222"},
		{"nats://s3crettoken@a:4222", "nats://xxxxx@a:4222"},
		{"nats://u:s3cret@a:4222%zz", unparsable},
	} {
		if got := MaskNATSURL(tc.in); got != tc.want {
			t.Errorf("MaskNATSURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The start-up log prints Masked(): no password in any form reaches it.
func TestMaskedConfigShowsNoSecret(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"host=db user=app password=s3cret",
		"postgres://app:s3cret@db/repcue",
		"postgres://app:s3cret@db:99999999/repcue%",
	} {
		c, err := parse(env(map[string]string{"DATABASE_URL": dsn, "REPCUE_NATS_URL": "nats://s3cret@n:4222"}))
		if err != nil {
			t.Fatal(err)
		}
		if s := fmt.Sprint(c.Masked()); strings.Contains(s, "s3cret") {
			t.Errorf("Masked() for %q shows the secret: %s", dsn, s)
		}
	}
}

func TestNormalizeOrigin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"https://coach.example.com", "https://coach.example.com", true},
		{"https://coach.example.com/", "https://coach.example.com", true},
		{"HTTPS://Coach.Example.COM:443/", "https://coach.example.com", true},
		{"http://localhost:80", "http://localhost", true},
		{"http://localhost:3000", "http://localhost:3000", true},
		{"https://coach.example.com:8443", "https://coach.example.com:8443", true},
		{"http://[::1]:3000/", "http://[::1]:3000", true},
		{"http://[::1]:80", "http://[::1]", true},
		{"https://coach.example.com/path", "", false},
		{"https://coach.example.com?x=1", "", false},
		{"https://u:p@coach.example.com", "", false},
		{"ftp://coach.example.com", "", false},
		{"null", "", false},
		{"https://", "", false},
		{"https://coach.example.com:0", "", false},
		{"https://coach.example.com:99999", "", false},
	} {
		got, ok := NormalizeOrigin(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("NormalizeOrigin(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseNewSettings(t *testing.T) {
	t.Parallel()
	c, err := parse(env(map[string]string{
		"REPCUE_TRUSTED_PROXIES": " 10.0.0.0/8, 192.168.1.7 ,2001:db8::/32,::ffff:172.16.0.0/108",
		"REPCUE_METRICS_ADDR":    "127.0.0.1:9090",
		"REPCUE_DEV":             "true",
		"REPCUE_ALLOWED_ORIGINS": "https://Coach.Example.com/, http://localhost:3000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c.TrustedProxies); got != "[10.0.0.0/8 192.168.1.7/32 2001:db8::/32 172.16.0.0/12]" {
		t.Errorf("trusted proxies %s", got)
	}
	if c.MetricsAddr != "127.0.0.1:9090" || !c.Dev {
		t.Errorf("metrics addr %q, dev %v", c.MetricsAddr, c.Dev)
	}
	if got := fmt.Sprint(c.AllowedOrigins); got != "[https://coach.example.com http://localhost:3000]" {
		t.Errorf("origins %s", got)
	}
	for name, value := range map[string]string{
		"REPCUE_TRUSTED_PROXIES": "10.0.0.0/33",
		"REPCUE_METRICS_ADDR":    "9090",
		"REPCUE_DEV":             "maybe",
		"REPCUE_ALLOWED_ORIGINS": "https://a.example.com/x",
	} {
		if _, err := parse(env(map[string]string{name: value})); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: err %v, want one naming the setting", name, value, err)
		}
	}
	if _, err := parse(env(map[string]string{"REPCUE_ADDR": ":8080", "REPCUE_METRICS_ADDR": ":8080"})); err == nil {
		t.Error("REPCUE_METRICS_ADDR equal to REPCUE_ADDR was accepted")
	}
	c, _ = parse(env(nil))
	if c.Dev || len(c.TrustedProxies) != 0 || c.MetricsAddr != "" {
		t.Errorf("defaults: dev %v, proxies %v, metrics %q", c.Dev, c.TrustedProxies, c.MetricsAddr)
	}
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}
