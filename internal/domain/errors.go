// Package domain holds repcue's vocabulary: the error type every layer returns,
// the roles, and the small value types shared by the stores, the HTTP API and the
// live hub. It does no I/O.
package domain

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an error for clients. The HTTP API maps each code to a status in
// exactly one place; live error frames carry the code as it is.
type Code string

const (
	CodeInvalid              Code = "invalid"
	CodeUnauthorized         Code = "unauthorized"
	CodeForbidden            Code = "forbidden"
	CodeNotFound             Code = "not_found"
	CodeConflict             Code = "conflict"
	CodePreconditionFailed   Code = "precondition_failed"
	CodePreconditionRequired Code = "precondition_required"
	CodeTooManyRequests      Code = "too_many_requests"
	CodePayloadTooLarge      Code = "payload_too_large"
	CodeUnsupportedMediaType Code = "unsupported_media_type"
	CodeInternal             Code = "internal"
	CodeUnavailable          Code = "unavailable"
	// CodeInvalidTransition is used by the live protocol only: a rep phase the rep
	// timer refuses in its current state.
	CodeInvalidTransition Code = "invalid_transition"
)

// Error is the one error type that crosses layers. Message is safe to show to a
// client; Err is the internal cause and is only ever logged.
type Error struct {
	Code       Code
	Message    string
	Field      string        // the offending input field, when there is one
	RetryAfter time.Duration // for CodeTooManyRequests and CodeUnavailable
	LiveSetID  string        // a conflict with the athlete's live set: its id (problem member live_set_id)
	// Current is, for CodePreconditionFailed, the entity as it is now (read in
	// the transaction that refused the edit) and CurrentVersion its version, so
	// that an editor can show both sides without another request.
	Current        any
	CurrentVersion int
	Err            error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an Error with a client-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid reports bad input in one named field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps an unexpected failure; clients only ever see a generic message.
func Internal(err error) *Error {
	return &Error{Code: CodeInternal, Message: "internal error", Err: err}
}

// NotFound is the answer both for a missing object and for one the caller may not see.
func NotFound(what string) *Error {
	return &Error{Code: CodeNotFound, Message: what + " not found"}
}

// ErrorCode returns the code of err, CodeInternal for anything that is not an *Error.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// AsError returns err as an *Error, wrapping unknown errors as internal ones.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal(err)
}
