package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Push is the push-notification part of the configuration.
type Push struct {
	VAPIDKeyFile      string // REPCUE_VAPID_PRIVATE_KEY_FILE; empty: a development key made at start
	VAPIDSubject      string // REPCUE_VAPID_SUBJECT: mailto: or https: contact for push services
	MaxDevices        int    // REPCUE_PUSH_MAX_DEVICES: devices per user
	AllowLoopbackHTTP bool   // REPCUE_PUSH_ALLOW_LOOPBACK_HTTP: development and tests only
}

// DevVAPIDSubject is the subject used with a generated development key.
const DevVAPIDSubject = "mailto:push@repcue.invalid"

func parsePush(get func(string) string) (Push, []string) {
	p := Push{
		VAPIDKeyFile: strings.TrimSpace(get("REPCUE_VAPID_PRIVATE_KEY_FILE")),
		VAPIDSubject: strings.TrimSpace(get("REPCUE_VAPID_SUBJECT")),
	}
	var errs []string
	if p.VAPIDSubject == "" && p.VAPIDKeyFile == "" {
		p.VAPIDSubject = DevVAPIDSubject
	}
	if u, err := url.Parse(p.VAPIDSubject); err != nil || !(u.Scheme == "mailto" && u.Opaque != "" || u.Scheme == "https" && u.Host != "") {
		errs = append(errs, "REPCUE_VAPID_SUBJECT must be a mailto: or https: URL where push services can reach you (required with REPCUE_VAPID_PRIVATE_KEY_FILE)")
	}
	n, err := strconv.Atoi(orDefault(strings.TrimSpace(get("REPCUE_PUSH_MAX_DEVICES")), "10"))
	if err != nil || n < 1 || n > 100 {
		errs = append(errs, "REPCUE_PUSH_MAX_DEVICES must be an integer from 1 to 100")
	}
	p.MaxDevices = n
	if v := strings.TrimSpace(get("REPCUE_PUSH_ALLOW_LOOPBACK_HTTP")); v != "" {
		allow, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("REPCUE_PUSH_ALLOW_LOOPBACK_HTTP must be true or false, not %q", v))
		}
		p.AllowLoopbackHTTP = allow
	}
	return p, errs
}
