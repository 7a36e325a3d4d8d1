package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/mail"
	"github.com/repcue/repcue/internal/mailtest"
)

// withMail runs the outbox's dispatcher for the harness against a real SMTP
// server on the loopback interface, and returns that server.
func (h *harness) withMail() *mailtest.Server {
	h.t.Helper()
	srv := mailtest.Start(h.t)
	s, err := mail.NewSMTP(srv.URL, "repcue <no-reply@repcue.test>")
	if err != nil {
		h.t.Fatal(err)
	}
	d := mail.NewDispatcher(h.store, s.WithTLSConfig(srv.ClientTLS), slog.New(slog.NewTextHandler(io.Discard, nil)), 20*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	d.Start(ctx)
	h.t.Cleanup(func() { cancel(); d.Wait() })
	return srv
}

// mailTo waits for the n-th (1-based) message to addr and returns it.
func mailTo(t *testing.T, srv *mailtest.Server, addr string, n int) mailtest.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := srv.To(addr); len(got) >= n {
			return got[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mail number %d to %s (%d arrived)", n, addr, len(srv.To(addr)))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// verify confirms an account's sign-up address with the link of its mail.
func (h *harness) verify(srv *mailtest.Server, a account) {
	h.t.Helper()
	m := mailTo(h.t, srv, a.Email, 1)
	expect(h.t, h.post("/v1/auth/verify-email", "", map[string]any{"token": m.Token()}), 204)
}

// afterRecheck moves the clock past the session re-check, so that ended
// sessions are seen as ended.
func (h *harness) afterRecheck() { h.clock.Advance(6 * time.Second) }

func TestSignUpSendsAVerificationMail(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	srv := h.withMail()
	a := h.register("athlete")
	// The account works at once, unverified.
	me := h.get("/v1/me", a.Access).json(t)
	if me["email_verified"] != false || me["email"] != a.Email {
		t.Fatalf("me %v", me)
	}
	m := mailTo(t, srv, a.Email, 1)
	if m.Subject != "Confirm your email for repcue" || !strings.Contains(m.Body, "http://localhost:8080/verify-email?token="+m.Token()) || !m.TLS {
		t.Fatalf("verification mail %q: %s", m.Subject, m.Body)
	}
	expect(t, h.post("/v1/auth/verify-email", "", map[string]any{"token": "not-the-token"}), 400, "invalid", "token")
	expect(t, h.post("/v1/auth/verify-email", "", map[string]any{"token": m.Token()}), 204)
	if me := h.get("/v1/me", a.Access).json(t); me["email_verified"] != true {
		t.Fatalf("after verification: %v", me)
	}
	// Single use; nothing to resend once verified.
	expect(t, h.post("/v1/auth/verify-email", "", map[string]any{"token": m.Token()}), 400, "invalid", "token")
	expect(t, h.post("/v1/me/email/verification", a.Access, nil), 409, "conflict")
	// Only the hash is stored.
	var stored int
	if err := h.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM email_tokens WHERE token_hash = $1::text::bytea`, m.Token()).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("the token is stored as is: %d, %v", stored, err)
	}
}

func TestVerificationCanBeSentAgainAndExpires(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	srv := h.withMail()
	a := h.register("coach")
	first := mailTo(t, srv, a.Email, 1)
	expect(t, h.post("/v1/me/email/verification", a.Access, map[string]any{}), 202)
	second := mailTo(t, srv, a.Email, 2)
	if first.Token() == second.Token() {
		t.Fatal("the same token twice")
	}
	// Expired tokens are refused.
	if _, err := h.store.Pool().Exec(context.Background(), `UPDATE email_tokens SET expires_at = now() - interval '1 second' WHERE user_id = $1`, a.ID); err != nil {
		t.Fatal(err)
	}
	expect(t, h.post("/v1/auth/verify-email", "", map[string]any{"token": second.Token()}), 400, "invalid", "token")
	expect(t, h.post("/v1/me/email/verification", a.Access, nil), 202)
	expect(t, h.post("/v1/me/email/verification", a.Access, nil), 202)
	expect(t, h.post("/v1/me/email/verification", a.Access, nil), 429, "too_many_requests")
	third := mailTo(t, srv, a.Email, 3)
	expect(t, h.post("/v1/auth/verify-email", "", map[string]any{"token": third.Token()}), 204)
}

func TestPasswordResetByMail(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	srv := h.withMail()
	a := h.register("athlete")
	h.verify(srv, a)
	second := login(h, a.Email, "correct horse battery").json(t)

	known := h.post("/v1/auth/password-reset", "", map[string]any{"email": strings.ToUpper(a.Email)})
	unknown := h.post("/v1/auth/password-reset", "", map[string]any{"email": "nobody-" + uuid.NewString() + "@example.com"})
	expect(t, known, 202)
	expect(t, unknown, 202)
	if string(known.Body) != string(unknown.Body) {
		t.Fatalf("the answers differ: %s / %s", known.Body, unknown.Body)
	}
	m := mailTo(t, srv, a.Email, 2)
	if m.Subject != "Reset your repcue password" || !strings.Contains(m.Body, "/reset-password?token="+m.Token()) {
		t.Fatalf("reset mail %q: %s", m.Subject, m.Body)
	}
	expect(t, h.post("/v1/auth/password-reset/confirm", "", map[string]any{"token": m.Token(), "new_password": "short"}), 400, "invalid", "new_password")
	expect(t, h.post("/v1/auth/password-reset/confirm", "", map[string]any{"token": "bogus", "new_password": "a brand new password"}), 400, "invalid", "token")
	expect(t, h.post("/v1/auth/password-reset/confirm", "", map[string]any{"token": m.Token(), "new_password": "a brand new password"}), 204)

	// Every session ended: access tokens (after the re-check), refresh tokens.
	h.afterRecheck()
	expect(t, h.get("/v1/me", a.Access), 401)
	expect(t, h.get("/v1/me", second["access_token"].(string)), 401)
	expect(t, h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": a.Refresh}), 401)
	expect(t, login(h, a.Email, "correct horse battery"), 401)
	expect(t, login(h, a.Email, "a brand new password"), 200)
	// Single use.
	expect(t, h.post("/v1/auth/password-reset/confirm", "", map[string]any{"token": m.Token(), "new_password": "yet another password"}), 400, "invalid", "token")
}

func TestUnverifiedAccountsReceiveNoReset(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	srv := h.withMail()
	a := h.register("athlete")
	mailTo(t, srv, a.Email, 1) // the verification mail
	expect(t, h.post("/v1/auth/password-reset", "", map[string]any{"email": a.Email}), 202)
	// The reset mail is written like any other, and dropped when delivered.
	deadline := time.Now().Add(10 * time.Second)
	for h.count(`SELECT count(*) FROM mail_outbox WHERE recipient = $1 AND failed_at IS NOT NULL AND body = ''`, a.Email) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the reset mail of an unverified account was not dropped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(srv.To(a.Email)); n != 1 {
		t.Fatalf("%d mails for an unverified account, want only its verification mail", n)
	}
	if n := h.count(`SELECT count(*) FROM email_tokens WHERE user_id = $1 AND purpose = 'reset'`, a.ID); n != 0 {
		t.Fatalf("%d reset tokens", n)
	}
	// Verified, the same request gets its mail, whose token works the moment
	// the mail arrives.
	h.verify(srv, a)
	expect(t, h.post("/v1/auth/password-reset", "", map[string]any{"email": a.Email}), 202)
	m := mailTo(t, srv, a.Email, 2)
	expect(t, h.post("/v1/auth/password-reset/confirm", "", map[string]any{"token": m.Token(), "new_password": "a brand new password"}), 204)
}

func TestPasswordResetRequestsAreThrottled(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	email := "someone-" + uuid.NewString() + "@example.com"
	for range 3 {
		expect(t, h.post("/v1/auth/password-reset", "", map[string]any{"email": email}), 202)
	}
	r := h.post("/v1/auth/password-reset", "", map[string]any{"email": email})
	expect(t, r, 429, "too_many_requests")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	// Per client address: 10 in all (3 above), then 429 whatever the email.
	for range 7 {
		expect(t, h.post("/v1/auth/password-reset", "", map[string]any{"email": uuid.NewString() + "@example.com"}), 202)
	}
	expect(t, h.post("/v1/auth/password-reset", "", map[string]any{"email": uuid.NewString() + "@example.com"}), 429, "too_many_requests")
	expect(t, h.post("/v1/auth/password-reset", "", map[string]any{"email": "not an email"}), 400, "invalid", "email")
}

func TestChangePasswordEndsEveryOtherSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.register("coach")
	other := login(h, a.Email, "correct horse battery").json(t)
	addr := h.listen()
	sock, _, err := dial(t, addr, other["access_token"].(string), "", "")
	if err != nil {
		t.Fatal(err)
	}

	expect(t, h.post("/v1/me/password", a.Access, map[string]any{"current_password": "wrong password!", "new_password": "a brand new password"}), 403, "forbidden", "current_password")
	expect(t, h.post("/v1/me/password", a.Access, map[string]any{"current_password": "correct horse battery", "new_password": "short"}), 400, "invalid", "new_password")
	expect(t, h.post("/v1/me/password", a.Access, map[string]any{"current_password": "correct horse battery", "new_password": "a brand new password"}), 204)

	h.afterRecheck()
	expect(t, h.get("/v1/me", a.Access), 200) // the caller's own session goes on
	expect(t, h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": a.Refresh}), 200)
	expect(t, h.get("/v1/me", other["access_token"].(string)), 401)
	expect(t, h.post("/v1/auth/refresh", "", map[string]any{"refresh_token": other["refresh_token"]}), 401)
	expect(t, login(h, a.Email, "correct horse battery"), 401)
	expect(t, login(h, a.Email, "a brand new password"), 200)
	// The other session's socket is closed by the hub's session re-check.
	_ = sock.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		if _, _, err := sock.conn.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, 4001) {
				t.Fatalf("the other session's socket ended with %v, want 4001", err)
			}
			break
		}
	}
}

// Guessing the current password is throttled like a sign-in, on the same count.
func TestChangePasswordIsThrottledLikeLogin(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.register("athlete")
	for range 5 {
		expect(t, h.post("/v1/me/password", a.Access, map[string]any{"current_password": "wrong password!", "new_password": "a brand new password"}), 403)
	}
	r := h.post("/v1/me/password", a.Access, map[string]any{"current_password": "correct horse battery", "new_password": "a brand new password"})
	expect(t, r, 429, "too_many_requests")
	expect(t, login(h, a.Email, "correct horse battery"), 429) // the same count
}

func TestChangeEmailTakesEffectOnConfirmation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	srv := h.withMail()
	a := h.register("athlete")
	b := h.register("athlete")
	expect(t, h.post("/v1/me/email", a.Access, map[string]any{"password": "correct horse battery", "new_email": strings.ToUpper(b.Email)}), 409, "conflict", "new_email")
	expect(t, h.post("/v1/me/email", a.Access, map[string]any{"password": "nope, wrong one", "new_email": "x@example.com"}), 403, "forbidden", "password")
	expect(t, h.post("/v1/me/email", a.Access, map[string]any{"password": "correct horse battery", "new_email": "not-an-email"}), 400, "invalid", "new_email")
	newEmail := "moved-" + uuid.NewString() + "@example.com"
	expect(t, h.post("/v1/me/email", a.Access, map[string]any{"password": "correct horse battery", "new_email": newEmail}), 202)
	m := mailTo(t, srv, newEmail, 1)
	if me := h.get("/v1/me", a.Access).json(t); me["email"] != a.Email {
		t.Fatalf("the email changed before confirmation: %v", me)
	}
	expect(t, h.post("/v1/auth/verify-email", "", map[string]any{"token": m.Token()}), 204)
	me := h.get("/v1/me", a.Access).json(t)
	if me["email"] != newEmail || me["email_verified"] != true {
		t.Fatalf("after confirmation: %v", me)
	}
	expect(t, login(h, newEmail, "correct horse battery"), 200)
	expect(t, login(h, a.Email, "correct horse battery"), 401)
	// The old address's verification link is void now.
	expect(t, h.post("/v1/auth/verify-email", "", map[string]any{"token": mailTo(t, srv, a.Email, 1).Token()}), 400)

	// Taken between the request and the confirmation: 409, nothing changes.
	other := "race-" + uuid.NewString() + "@example.com"
	expect(t, h.post("/v1/me/email", b.Access, map[string]any{"password": "correct horse battery", "new_email": other}), 202)
	tok := mailTo(t, srv, other, 1).Token()
	r := h.post("/v1/auth/register", "", map[string]any{"email": other, "password": "correct horse battery", "display_name": "Racer", "role": "coach"})
	expect(t, r, 201)
	expect(t, h.post("/v1/auth/verify-email", "", map[string]any{"token": tok}), 409, "conflict")
	if me := h.get("/v1/me", b.Access).json(t); me["email"] != b.Email {
		t.Fatalf("b moved anyway: %v", me)
	}
}

func TestInvitesAreListedAndRevoked(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.register("coach")
	a := h.register("athlete")
	first, second := h.invite(c), h.invite(c)
	var list struct {
		Items []struct {
			Code      string `json:"code"`
			ExpiresAt string `json:"expires_at"`
		} `json:"items"`
		NextCursor *string `json:"next_cursor"`
	}
	h.get("/v1/coach/invites", c.Access).decode(t, &list)
	if len(list.Items) != 2 || list.Items[0].Code != second || list.Items[1].Code != first || list.NextCursor != nil {
		t.Fatalf("invites %+v", list)
	}
	expect(t, h.del("/v1/coach/invites/"+strings.ToLower(first), c.Access), 204)
	expect(t, h.del("/v1/coach/invites/"+first, c.Access), 404, "not_found")
	expect(t, h.post("/v1/athlete/coach-links", a.Access, map[string]any{"code": first}), 404)
	// Used codes are not outstanding, and cannot be revoked.
	expect(t, h.post("/v1/athlete/coach-links", a.Access, map[string]any{"code": second}), 201)
	h.get("/v1/coach/invites", c.Access).decode(t, &list)
	if len(list.Items) != 0 {
		t.Fatalf("invites after use and revocation: %+v", list)
	}
	expect(t, h.del("/v1/coach/invites/"+second, c.Access), 404)
	expect(t, h.del("/v1/coach/invites/not-a-code!", c.Access), 404)
}

func TestAthletesListAndLeaveTheirCoaches(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.addVariation()
	addr := h.listen()
	a := h.register("athlete")
	c1, c2 := h.register("coach"), h.register("coach")
	h.link(c1, a)
	h.link(c2, a)
	var list struct {
		Items []struct {
			ID          string `json:"id"`
			DisplayName string `json:"display_name"`
		} `json:"items"`
		NextCursor *string `json:"next_cursor"`
	}
	h.get("/v1/athlete/coaches?limit=1", a.Access).decode(t, &list)
	if len(list.Items) != 1 || list.NextCursor == nil {
		t.Fatalf("page 1 %+v", list)
	}
	firstID := list.Items[0].ID
	h.get("/v1/athlete/coaches?limit=1&cursor="+*list.NextCursor, a.Access).decode(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID == firstID || list.NextCursor != nil {
		t.Fatalf("page 2 %+v", list)
	}

	// c1 watches a live set; the athlete leaves c1: the watching stops at once.
	r := h.post("/v1/sets", a.Access, map[string]any{"variation": testVariation, "load_kg": 80, "target_reps": 3, "pause_hold_ms": 300})
	expect(t, r, 201)
	setID := r.json(t)["id"].(string)
	sock, _, err := dial(t, addr, c1.Access, "", "")
	if err != nil {
		t.Fatal(err)
	}
	sock.send(map[string]any{"type": "subscribe", "set_id": setID})
	sock.next("snapshot")
	expect(t, h.del("/v1/athlete/coaches/"+c1.ID, a.Access), 204)
	if m := sock.next("unsubscribed"); m["set_id"] != setID || m["reason"] != "unlinked" {
		t.Fatalf("unsubscribed %v", m)
	}
	sock.send(map[string]any{"type": "subscribe", "set_id": setID})
	if m := sock.next("error"); m["code"] != "not_found" {
		t.Fatalf("resubscribing after leaving: %v", m)
	}
	expect(t, h.get("/v1/sets/"+setID, c1.Access), 404)
	expect(t, h.get("/v1/sets/"+setID, c2.Access), 200)
	expect(t, h.del("/v1/athlete/coaches/"+c1.ID, a.Access), 404, "not_found")
	expect(t, h.del("/v1/athlete/coaches/not-a-uuid", a.Access), 404)
	h.get("/v1/athlete/coaches", a.Access).decode(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != c2.ID {
		t.Fatalf("after leaving %+v", list)
	}
}

func TestPrescriptionsAreEditedAndDeletedUntilASetIsDone(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.addVariation()
	c, other := h.register("coach"), h.register("coach")
	a := h.register("athlete")
	h.link(c, a)
	h.link(other, a)
	r := h.post("/v1/prescriptions", c.Access, prescription(a.ID, nil))
	expect(t, r, 201)
	id := r.json(t)["id"].(string)
	if r.Header.Get("ETag") != `"1"` {
		t.Fatalf("ETag %q", r.Header.Get("ETag"))
	}
	path := "/v1/prescriptions/" + id
	patch := func(token, etag string, body any) response {
		hdr := map[string]string{}
		if etag != "" {
			hdr["If-Match"] = etag
		}
		return h.do(request{Method: "PATCH", Path: path, Token: token, Header: hdr, Body: body})
	}
	expect(t, patch(c.Access, "", map[string]any{"reps": 10}), 428, "precondition_required")
	expect(t, patch(c.Access, `"7"`, map[string]any{"reps": 10}), 412, "precondition_failed")
	expect(t, patch(c.Access, `"1"`, map[string]any{"reps": 0}), 400, "invalid", "reps")
	expect(t, patch(c.Access, `"1"`, map[string]any{"reps": nil}), 400, "invalid", "reps")
	expect(t, patch(c.Access, `"1"`, map[string]any{"athlete_id": a.ID}), 400, "invalid")
	expect(t, patch(c.Access, `"1"`, map[string]any{"variation": "no-such-variation"}), 400, "invalid", "variation")
	expect(t, patch(c.Access, `"1"`, map[string]any{}), 400, "invalid")
	expect(t, patch(other.Access, `"1"`, map[string]any{"reps": 10}), 404) // another linked coach did not write it
	expect(t, patch(a.Access, `"1"`, map[string]any{"reps": 10}), 403)
	r = patch(c.Access, `"1"`, map[string]any{"reps": 10, "load_kg": 70, "notes": "  Heavier.  "})
	expect(t, r, 200)
	got := r.json(t)
	if got["reps"] != float64(10) || got["load_kg"] != float64(70) || got["notes"] != "Heavier." || got["version"] != float64(2) || r.Header.Get("ETag") != `"2"` {
		t.Fatalf("after the edit: %v (ETag %s)", got, r.Header.Get("ETag"))
	}
	if g := h.get(path, a.Access); g.Header.Get("ETag") != `"2"` || g.json(t)["reps"] != float64(10) {
		t.Fatalf("GET after the edit: %s %s", g.Header.Get("ETag"), g.Body)
	}
	expect(t, h.do(request{Method: "DELETE", Path: path, Token: c.Access, Header: map[string]string{"If-Match": `"1"`}}), 412)

	// A set started from it takes the edited values; from then on it is fixed.
	r = h.post("/v1/sets", a.Access, map[string]any{"prescription_id": id})
	expect(t, r, 201)
	if s := r.json(t); s["target_reps"] != float64(10) || s["load_kg"] != float64(70) {
		t.Fatalf("set from the edited prescription: %v", s)
	}
	expect(t, patch(c.Access, `"2"`, map[string]any{"reps": 12}), 409, "conflict")
	expect(t, h.do(request{Method: "DELETE", Path: path, Token: c.Access, Header: map[string]string{"If-Match": `"2"`}}), 409, "conflict")

	// One without a set is deleted.
	id2 := h.prescribe(c, a.ID)
	expect(t, h.do(request{Method: "DELETE", Path: "/v1/prescriptions/" + id2, Token: c.Access}), 428)
	expect(t, h.do(request{Method: "DELETE", Path: "/v1/prescriptions/" + id2, Token: c.Access, Header: map[string]string{"If-Match": `"1"`}}), 204)
	expect(t, h.get("/v1/prescriptions/"+id2, a.Access), 404)
	// After unlinking, the author can no longer change what it wrote.
	id3 := h.prescribe(c, a.ID)
	expect(t, h.del("/v1/athlete/coaches/"+c.ID, a.Access), 204)
	expect(t, h.do(request{Method: "DELETE", Path: "/v1/prescriptions/" + id3, Token: c.Access, Header: map[string]string{"If-Match": "*"}}), 404)
}

// An edit racing a set started from the prescription: either the edit comes
// first and the set has its values, or the set comes first and the edit is
// refused. Never a set with the old values beside an edit that succeeded.
func TestPrescriptionEditRacingASet(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.addVariation()
	c := h.register("coach")
	for trial := range 6 {
		a := h.register("athlete")
		h.link(c, a)
		id := h.prescribe(c, a.ID)
		edit := make(chan response, 1)
		go func() {
			edit <- h.do(request{Method: "PATCH", Path: "/v1/prescriptions/" + id, Token: c.Access,
				Header: map[string]string{"If-Match": `"1"`}, Body: map[string]any{"reps": 11}})
		}()
		set := h.post("/v1/sets", a.Access, map[string]any{"prescription_id": id})
		e := <-edit
		expect(t, set, 201)
		reps := set.json(t)["target_reps"]
		switch e.Status {
		case 200:
			if reps != float64(11) {
				t.Fatalf("trial %d: the edit succeeded but the set has %v reps", trial, reps)
			}
		case 409:
			if reps != float64(8) {
				t.Fatalf("trial %d: the edit was refused but the set has %v reps", trial, reps)
			}
		default:
			t.Fatalf("trial %d: edit answered %d: %s", trial, e.Status, e.Body)
		}
	}
}
