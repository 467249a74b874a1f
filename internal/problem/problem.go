// Package problem writes RFC 9457 problem details (application/problem+json), the one error
// shape of every Forgeway HTTP answer: what failed (title, detail) and what to do (hint).
// It never carries a stack trace or a secret.
package problem

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Details is an RFC 9457 problem document with Forgeway's `hint` extension.
type Details struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Hint     string `json:"hint,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Errors lists field-level problems of a request body.
	Errors []FieldError `json:"errors,omitempty"`
}

// FieldError is one invalid field.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// TypeBase prefixes problem types; each type is documented in docs/errors.md.
const TypeBase = "https://forgeway.dev/problems/"

// New builds a problem; slug names its type (e.g. "invalid-signature").
func New(status int, slug, title, detail, hint string) *Details {
	return &Details{Type: TypeBase + slug, Title: title, Status: status, Detail: detail, Hint: hint}
}

func (d *Details) Error() string {
	if d.Detail == "" {
		return d.Title
	}
	return d.Title + ": " + d.Detail
}

// Write sends the problem.
func Write(w http.ResponseWriter, d *Details) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(d.Status)
	_ = json.NewEncoder(w).Encode(d)
}

// Send builds and writes a problem in one call.
func Send(w http.ResponseWriter, status int, slug, title, detail, hint string) {
	Write(w, New(status, slug, title, detail, hint))
}

// Slug returns the last part of a problem type, for metrics and tests.
func Slug(typ string) string { return strings.TrimPrefix(typ, TypeBase) }
