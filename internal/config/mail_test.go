package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestMailSettings(t *testing.T) {
	t.Parallel()
	c, err := parse(env(map[string]string{
		"REPCUE_SMTP_URL":   "smtp://mailer:s3cret@smtp.example.com:587",
		"REPCUE_MAIL_FROM":  "repcue <no-reply@example.com>",
		"REPCUE_PUBLIC_URL": "https://app.example.com/",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL != "https://app.example.com" || c.MailFrom != "repcue <no-reply@example.com>" {
		t.Errorf("public url %q, from %q", c.PublicURL, c.MailFrom)
	}
	if s := fmt.Sprint(c.Masked()); strings.Contains(s, "s3cret") || !strings.Contains(s, "smtp.example.com") {
		t.Errorf("Masked() %s", s)
	}
	for name, value := range map[string]string{
		"REPCUE_SMTP_URL":   "mail.example.com:25",
		"REPCUE_MAIL_FROM":  "not an address",
		"REPCUE_PUBLIC_URL": "app.example.com",
	} {
		if _, err := parse(env(map[string]string{name: value})); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: err %v, want one naming the setting", name, value, err)
		}
	}
	c, _ = parse(env(nil))
	if c.SMTPURL != "" || c.PublicURL != "http://localhost:8080" {
		t.Errorf("defaults: smtp %q, public url %q", c.SMTPURL, c.PublicURL)
	}
}
