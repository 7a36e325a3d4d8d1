package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/push"
)

// deviceRequest is a browser's PushSubscription as PushSubscription.toJSON()
// gives it (expirationTime, which browsers include, is accepted and ignored).
type deviceRequest struct {
	Endpoint       string `json:"endpoint"`
	ExpirationTime *int64 `json:"expirationTime"`
	Keys           struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

type vapidKeyResponse struct {
	PublicKey string `json:"public_key"`
}

func (a *API) handleVAPIDKey(c *fiber.Ctx) error {
	if a.vapidPublicKey == "" {
		return domain.Errorf(domain.CodeUnavailable, "push notifications are not configured on this server")
	}
	return c.JSON(vapidKeyResponse{PublicKey: a.vapidPublicKey})
}

func (a *API) handleRegisterDevice(c *fiber.Ctx) error {
	if a.vapidPublicKey == "" {
		return domain.Errorf(domain.CodeUnavailable, "push notifications are not configured on this server")
	}
	var req deviceRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := push.CheckSubscription(req.Endpoint, req.Keys.P256dh, req.Keys.Auth, a.cfg.Push.AllowLoopbackHTTP); err != nil {
		return err
	}
	d, created, err := a.store.RegisterDevice(c.UserContext(), domain.Device{
		UserID: principal(c).UserID, Kind: domain.DeviceKindWebPush,
		Endpoint: req.Endpoint, P256dh: req.Keys.P256dh, Auth: req.Keys.Auth,
	}, a.cfg.Push.MaxDevices)
	if err != nil {
		return err
	}
	status := fiber.StatusOK // the same subscription again: its keys refreshed
	if created {
		status = fiber.StatusCreated
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(status).JSON(d)
}

func (a *API) handleListDevices(c *fiber.Ctx) error {
	list, err := a.store.ListDevices(c.UserContext(), principal(c).UserID)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"items": list, "next_cursor": nil})
}

func (a *API) handleDeleteDevice(c *fiber.Ctx) error {
	id, err := uuidParam(c, "id", "device")
	if err != nil {
		return err
	}
	if err := a.store.DeleteDevice(c.UserContext(), principal(c).UserID, id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
