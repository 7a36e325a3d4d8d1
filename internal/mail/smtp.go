// Package mail sends repcue's mail: messages are written to the PostgreSQL
// outbox (mail_outbox) in the transaction that makes them necessary, and a
// Dispatcher delivers them afterwards through a Sender (SMTP in production),
// retrying with backoff, surviving restarts and never sending one message from
// two processes.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"time"
)

// Message is one mail to deliver: plain text, UTF-8.
type Message struct {
	To      string
	Subject string
	Body    string
}

// Sender delivers a message. An error wrapping ErrPermanent is not retried.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// ErrPermanent marks a failure that retrying will not cure (the server refused
// the recipient or the message for good: an SMTP 5xx).
var ErrPermanent = errors.New("permanent mail failure")

// SMTP sends through an SMTP server named by a URL:
//
//	smtp://user:pass@host:port   plain connection, upgraded with STARTTLS when the
//	                             server offers it (port 587 when none is given)
//	smtps://user:pass@host:port  TLS from the start (port 465 when none is given)
//
// Credentials are optional. net/smtp refuses to send them over a connection
// that is neither TLS nor to localhost.
type SMTP struct {
	addr     string
	host     string
	implicit bool
	auth     smtp.Auth
	from     *mail.Address
	timeout  time.Duration
	// tls is the TLS configuration; tests may trust their own server.
	tls *tls.Config
}

// NewSMTP parses the server URL and the From address.
func NewSMTP(rawURL, from string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Path != "" && u.Path != "/" {
		return nil, errors.New("REPCUE_SMTP_URL must look like smtp://user:pass@host:port or smtps://user:pass@host:port")
	}
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("REPCUE_MAIL_FROM must be an address like \"repcue <no-reply@example.com>\": %w", err)
	}
	s := &SMTP{host: u.Hostname(), implicit: u.Scheme == "smtps", from: addr, timeout: 30 * time.Second}
	port := u.Port()
	if port == "" {
		port = "587"
		if s.implicit {
			port = "465"
		}
	}
	s.addr = net.JoinHostPort(s.host, port)
	s.tls = &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
	if u.User != nil {
		pass, _ := u.User.Password()
		s.auth = smtp.PlainAuth("", u.User.Username(), pass, s.host)
	}
	return s, nil
}

// WithTLSConfig replaces the TLS configuration (for a test server's own CA).
func (s *SMTP) WithTLSConfig(c *tls.Config) *SMTP {
	s.tls = c
	return s
}

// Send delivers m in one SMTP session, within the context's deadline (at most
// 30 s).
func (s *SMTP) Send(ctx context.Context, m Message) error {
	raw, err := s.compose(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return err
	}
	if s.implicit {
		conn = tls.Client(conn, s.tls)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		conn.Close()
		return classify(err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return classify(err)
	}
	if !s.implicit {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(s.tls); err != nil {
				return classify(err)
			}
		}
	}
	if s.auth != nil {
		if err := c.Auth(s.auth); err != nil {
			return classify(err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return classify(err)
	}
	if err := c.Rcpt(m.To); err != nil {
		return classify(err)
	}
	w, err := c.Data()
	if err != nil {
		return classify(err)
	}
	if _, err := w.Write(raw); err != nil {
		return classify(err)
	}
	if err := w.Close(); err != nil {
		return classify(err)
	}
	return classify(c.Quit())
}

// classify marks SMTP 5xx replies permanent.
func classify(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return fmt.Errorf("%w: %v", ErrPermanent, err)
	}
	return err
}

// compose renders m as an RFC 5322 message: UTF-8 plain text, quoted-printable.
func (s *SMTP) compose(m Message) ([]byte, error) {
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return nil, fmt.Errorf("%w: bad recipient: %v", ErrPermanent, err)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, fmt.Errorf("%w: a subject must be one line", ErrPermanent)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	domain := s.from.Address[strings.LastIndexByte(s.from.Address, '@')+1:]
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\n", s.from.String())
	fmt.Fprintf(&b, "To: %s\r\n", to.String())
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", m.Subject))
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", hex.EncodeToString(id), domain)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(strings.ReplaceAll(m.Body, "\n", "\r\n"))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
