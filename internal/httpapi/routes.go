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
	app.Get("/metrics", a.metricsHandler())
	app.Get("/openapi.yaml", a.handleOpenAPI)
	app.Get("/.well-known/jwks.json", a.handleJWKS)

	v1 := app.Group("/v1")
	v1.Post("/auth/register", a.handleRegister)
	v1.Post("/auth/login", a.handleLogin)
	v1.Post("/auth/refresh", a.handleRefresh)
	v1.Post("/auth/logout", a.handleLogout)

	authn := a.authenticate
	v1.Get("/me", authn, a.handleMe)

	athlete, coach := only(domain.RoleAthlete), only(domain.RoleCoach)
	athleteOrCoach := only(domain.RoleAthlete, domain.RoleCoach)
	v1.Post("/sets", authn, athlete, a.handleCreateSet)
	v1.Get("/sets", authn, athleteOrCoach, a.handleListSets)
	v1.Get("/sets/:id", authn, athleteOrCoach, a.handleGetSet)
	v1.Post("/sets/:id/events", authn, athlete, a.handleUploadEvents)
	v1.Post("/sets/:id/end", authn, athlete, a.handleEndSet)
	v1.Post("/sets/:id/feedback", authn, coach, a.handleSetFeedback)

	v1.Post("/live/tickets", authn, athleteOrCoach, a.handleCreateTicket)
	v1.Get("/live", a.liveGate, a.liveHandler())
}
