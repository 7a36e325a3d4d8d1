package config

import (
	"strings"
	"testing"
)

func TestPushSettings(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	c, err := parse(env())
	if err != nil || c.Push.VAPIDSubject != DevVAPIDSubject || c.Push.MaxDevices != 10 || c.Push.AllowLoopbackHTTP {
		t.Fatalf("defaults: %+v, %v", c.Push, err)
	}
	c, err = parse(env("REPCUE_VAPID_PRIVATE_KEY_FILE", "/etc/repcue/vapid.pem", "REPCUE_VAPID_SUBJECT", "https://ops.example.com",
		"REPCUE_PUSH_MAX_DEVICES", "3", "REPCUE_PUSH_ALLOW_LOOPBACK_HTTP", "true"))
	if err != nil || c.Push.VAPIDKeyFile != "/etc/repcue/vapid.pem" || c.Push.MaxDevices != 3 || !c.Push.AllowLoopbackHTTP {
		t.Fatalf("set: %+v, %v", c.Push, err)
	}
	for _, bad := range [][]string{
		{"REPCUE_VAPID_PRIVATE_KEY_FILE", "/k.pem"}, // a real key needs a real subject
		{"REPCUE_VAPID_SUBJECT", "ops@example.com"},
		{"REPCUE_VAPID_SUBJECT", "mailto:"},
		{"REPCUE_VAPID_SUBJECT", "http://ops.example.com"},
		{"REPCUE_PUSH_MAX_DEVICES", "0"},
		{"REPCUE_PUSH_MAX_DEVICES", "many"},
		{"REPCUE_PUSH_ALLOW_LOOPBACK_HTTP", "sure"},
	} {
		_, err := parse(env(bad...))
		if err == nil || !strings.Contains(err.Error(), bad[0][:len("REPCUE_PUSH")]) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}
