package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"github.com/repcue/repcue/internal/domain"
)

// routes registers every endpoint of the API. Keep them all here: this list is
// the map of the server, and the authorisation matrix test walks it. Each
// signed-in route names its guards explicitly: authn first, then the roles.
func (a *API) routes(app *fiber.App) {
	app.Get("/livez", a.handleLivez)
	app.Get("/readyz", a.handleReadyz)
	if a.cfg.MetricsAddr == "" { // else /metrics is served on its own listener only
		app.Get("/metrics", a.metricsHandler())
	}
	app.Get("/openapi.yaml", a.handleOpenAPI)
	app.Get("/.well-known/jwks.json", a.handleJWKS)
	// The reference web clients: public static files (they sign in like any client).
	app.Get("/app/*", a.handleWebApp)

	v1 := app.Group("/v1")
	v1.Post("/auth/register", a.handleRegister)
	v1.Post("/auth/login", a.handleLogin)
	v1.Post("/auth/refresh", a.handleRefresh)
	v1.Post("/auth/logout", a.handleLogout)
	v1.Post("/auth/verify-email", a.handleVerifyEmail)
	v1.Post("/auth/password-reset", a.handlePasswordReset)
	v1.Post("/auth/password-reset/confirm", a.handlePasswordResetConfirm)

	authn := a.authenticate
	athlete, coach := domain.RoleAthlete, domain.RoleCoach
	v1.Get("/me", authn, a.handleMe)
	v1.Delete("/me", authn, a.handleDeleteMe)
	v1.Get("/me/export", authn, a.handleExportMe)
	v1.Post("/me/password", authn, a.handleChangePassword)
	v1.Post("/me/email", authn, a.handleChangeEmail)
	v1.Post("/me/email/verification", authn, a.handleResendVerification)

	// The exercise library: every signed-in user reads it, admins curate it.
	admin := domain.RoleAdmin
	v1.Get("/exercises", authn, a.handleListExercises)
	v1.Get("/exercises/:slug", authn, a.handleGetExercise)
	v1.Post("/admin/exercises/:slug/cues", authn, only(admin), a.handleCreateCue)
	v1.Get("/admin/cues/:id", authn, only(admin), a.handleGetCue)
	v1.Patch("/admin/cues/:id", authn, only(admin), a.handleUpdateCue)
	v1.Delete("/admin/cues/:id", authn, only(admin), a.handleDeleteCue)
	v1.Post("/admin/exercises/:slug/mistakes", authn, only(admin), a.handleCreateMistake)
	v1.Get("/admin/mistakes/:id", authn, only(admin), a.handleGetMistake)
	v1.Patch("/admin/mistakes/:id", authn, only(admin), a.handleUpdateMistake)
	v1.Delete("/admin/mistakes/:id", authn, only(admin), a.handleDeleteMistake)
	v1.Get("/admin/audit", authn, only(admin), a.handleListAudit)

	// Coaching: links between coaches and athletes, and prescriptions.
	v1.Post("/coach/invites", authn, only(coach), a.handleCreateInvite)
	v1.Post("/athlete/coach-links", authn, only(athlete), a.handleRedeemInvite)
	v1.Get("/coach/athletes", authn, only(coach), a.handleListAthletes)
	v1.Delete("/coach/athletes/:athlete_id", authn, only(coach), a.handleUnlinkAthlete)
	v1.Get("/coach/invites", authn, only(coach), a.handleListInvites)
	v1.Delete("/coach/invites/:code", authn, only(coach), a.handleRevokeInvite)
	v1.Get("/athlete/coaches", authn, only(athlete), a.handleListCoaches)
	v1.Delete("/athlete/coaches/:coach_id", authn, only(athlete), a.handleLeaveCoach)
	v1.Post("/prescriptions", authn, only(coach), a.handleCreatePrescription)
	v1.Get("/prescriptions", authn, only(athlete, coach), a.handleListPrescriptions)
	v1.Get("/prescriptions/:id", authn, only(athlete, coach), a.handleGetPrescription)
	v1.Patch("/prescriptions/:id", authn, only(coach), a.handleUpdatePrescription)
	v1.Delete("/prescriptions/:id", authn, only(coach), a.handleDeletePrescription)

	// Sets and the live channel.
	v1.Post("/sets", authn, only(athlete), a.handleCreateSet)
	v1.Get("/sets", authn, only(athlete, coach), a.handleListSets)
	v1.Get("/sets/:id", authn, only(athlete, coach), a.handleGetSet)
	v1.Post("/sets/:id/events", authn, only(athlete), a.handleUploadEvents)
	v1.Post("/sets/:id/end", authn, only(athlete), a.handleEndSet)
	v1.Post("/sets/:id/feedback", authn, only(coach), a.handleSetFeedback)
	v1.Post("/live/tickets", authn, only(athlete, coach), a.handleCreateTicket)
	v1.Get("/live", a.liveGate, a.liveHandler())

	// Progress (progress.go): the athlete's own, or a linked coach's view.
	v1.Patch("/me", authn, a.handlePatchMe)
	v1.Patch("/admin/variations/:id", authn, only(admin), a.handleUpdateVariation)
	v1.Get("/athletes/:id/progression", authn, only(athlete, coach), a.handleProgression)
	v1.Post("/athletes/:id/progression/prescribe", authn, only(coach), a.handlePrescribe)
	v1.Get("/athletes/:id/insights", authn, only(athlete, coach), a.handleInsights)
	v1.Get("/athletes/:id/sets.csv", authn, only(athlete, coach), a.handleSetsCSV)
	v1.Get("/coach/cue-effectiveness", authn, only(coach), a.handleCueEffectiveness)
	v1.Get("/coach/overview", authn, only(coach), a.handleOverview)
	// Push notifications: the key browsers subscribe with, and their devices.
	v1.Get("/push/vapid-public-key", a.handleVAPIDKey)
	v1.Post("/me/devices", authn, only(athlete, coach), a.handleRegisterDevice)
	v1.Get("/me/devices", authn, only(athlete, coach), a.handleListDevices)
	v1.Delete("/me/devices/:id", authn, only(athlete, coach), a.handleDeleteDevice)
}
