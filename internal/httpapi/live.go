package httpapi

import (
	"errors"
	"strings"
	"time"

	"github.com/fasthttp/websocket"
	ws "github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/repcue/repcue/internal/auth"
	"github.com/repcue/repcue/internal/config"
	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/live"
)

// ticketTTL is how long a live ticket may wait before it is used.
const ticketTTL = 30 * time.Second

// Socket timing: the server pings every 25 s (live.Config.PingPeriod); a socket
// that shows no sign of life for 60 s (live.Config.PongWait) is dropped; a write
// that cannot go out within writeWait ends the socket.
const writeWait = 10 * time.Second

func (a *API) handleCreateTicket(c *fiber.Ctx) error {
	p := principal(c)
	ticket, hash := auth.NewOpaqueToken()
	if err := a.store.CreateTicket(c.UserContext(), hash, p.UserID, p.Role, p.SessionID, ticketTTL); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"ticket": ticket, "expires_in": int(ticketTTL.Seconds())})
}

const (
	livePrincipalKey = "live-principal"
	liveReleaseKey   = "live-release"
)

// sameOrigin reports whether a browser's (normalised) Origin names the host the
// request was sent to: the server's own pages (the web clients under /app/) are
// never a foreign origin, whatever REPCUE_ALLOWED_ORIGINS lists.
func sameOrigin(origin, host string) bool {
	scheme, _, _ := strings.Cut(origin, "://")
	own, ok := config.NormalizeOrigin(scheme + "://" + host)
	return ok && host != "" && own == origin
}

// liveGate checks everything before the upgrade: that it is a well-formed
// one, the Origin (browsers send one; apps do not), and the credentials — a
// single-use ticket in the query or a bearer token. Neither is ever logged.
// The handshake is checked before the ticket is spent.
func (a *API) liveGate(c *fiber.Ctx) error {
	if !ws.IsWebSocketUpgrade(c) {
		return domain.Errorf(domain.CodeInvalid, "this endpoint only speaks WebSocket")
	}
	if strings.TrimSpace(c.Get("Sec-WebSocket-Version")) != "13" || strings.TrimSpace(c.Get("Sec-WebSocket-Key")) == "" {
		return domain.Errorf(domain.CodeInvalid, "not a WebSocket handshake: Sec-WebSocket-Version 13 and Sec-WebSocket-Key are required")
	}
	if origin := c.Get(fiber.HeaderOrigin); origin != "" {
		n, ok := config.NormalizeOrigin(origin)
		if !ok || !(a.origins[n] || sameOrigin(n, string(c.Request().Host()))) {
			return domain.Errorf(domain.CodeForbidden, "origin not allowed")
		}
	}
	var p live.Principal
	if ticket := c.Query("ticket"); ticket != "" {
		if len(ticket) > 128 {
			return domain.Errorf(domain.CodeUnauthorized, "invalid, used or expired ticket")
		}
		uid, role, sid, err := a.store.UseTicket(c.UserContext(), auth.HashOpaqueToken(ticket))
		if err != nil {
			return err
		}
		p = live.Principal{UserID: uid, Role: role, SessionID: sid}
	} else {
		bp, err := a.bearer(c)
		if err != nil {
			return err
		}
		p = live.Principal{UserID: bp.UserID, Role: bp.Role, SessionID: bp.SessionID}
	}
	if err := a.sessions.check(c.UserContext(), p.SessionID); err != nil {
		return err
	}
	// The account's sockets are counted across every node (live.Config.MaxSockets);
	// the place is given back when the socket ends, or now if the upgrade fails.
	release, err := a.live.Admit(c.UserContext(), p.UserID)
	if err != nil {
		return err
	}
	c.Locals(livePrincipalKey, p)
	c.Locals(liveReleaseKey, release)
	if err := c.Next(); err != nil {
		release()
		return err
	}
	return nil
}

func (a *API) liveHandler() fiber.Handler {
	// The gate is the one Origin check (allowed origins, the server's own, and
	// apps with none): the upgrader lets through what the gate did.
	upgrade := ws.New(func(conn *ws.Conn) {
		p, _ := conn.Locals(livePrincipalKey).(live.Principal)
		if release, ok := conn.Locals(liveReleaseKey).(func()); ok {
			defer release()
		}
		a.live.Serve(p, newWSSocket(conn, a.live.PongWait()))
	}, ws.Config{
		Origins:          []string{"*"},
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		RecoverHandler: func(conn *ws.Conn) {
			if r := recover(); r != nil {
				a.log.Error("live socket panicked", "panic", r)
				_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInternalServerErr, ""), time.Now().Add(time.Second))
			}
		},
	})
	return func(c *fiber.Ctx) error {
		err := upgrade(c)
		if errors.Is(err, fiber.ErrUpgradeRequired) {
			// The upgrader refused the handshake and wrote its own status (400,
			// 403, 405); the client's request was at fault, never the server.
			if c.Response().StatusCode() == fiber.StatusForbidden {
				return domain.Errorf(domain.CodeForbidden, "origin not allowed")
			}
			return domain.Errorf(domain.CodeInvalid, "not a valid WebSocket handshake")
		}
		return err
	}
}

// wsSocket adapts a WebSocket connection to live.Socket: a read limit,
// read deadlines renewed by pongs, write deadlines on every write.
type wsSocket struct {
	c        *ws.Conn
	pongWait time.Duration
}

func newWSSocket(c *ws.Conn, pongWait time.Duration) wsSocket {
	c.SetReadLimit(live.MaxFrameBytes)
	_ = c.SetReadDeadline(time.Now().Add(pongWait))
	c.SetPongHandler(func(string) error { return c.SetReadDeadline(time.Now().Add(pongWait)) })
	return wsSocket{c, pongWait}
}

func (s wsSocket) ReadMessage() ([]byte, error) {
	_, data, err := s.c.ReadMessage()
	if errors.Is(err, websocket.ErrReadLimit) {
		return nil, live.ErrTooBig
	}
	if err == nil {
		_ = s.c.SetReadDeadline(time.Now().Add(s.pongWait))
	}
	return data, err
}

func (s wsSocket) WriteMessage(data []byte) error {
	_ = s.c.SetWriteDeadline(time.Now().Add(writeWait))
	return s.c.WriteMessage(websocket.TextMessage, data)
}

func (s wsSocket) WritePing() error {
	return s.c.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait))
}

func (s wsSocket) WriteClose(code int, reason string) error {
	return s.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(writeWait))
}

// Interrupt wakes a blocked ReadMessage; the handler then returns, which is
// what closes the connection under Fiber.
func (s wsSocket) Interrupt() { _ = s.c.SetReadDeadline(time.Now()) }
