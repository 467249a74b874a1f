package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/forgeway/forgeway/internal/outbound"
	"github.com/forgeway/forgeway/internal/problem"
	"github.com/forgeway/forgeway/internal/store"
)

// Subscription is an outbound event subscription as the API shows it. Secret is set only in
// the answer that created or rotated it: it is never shown again.
type Subscription struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	URL            string    `json:"url"`
	EventTypes     []string  `json:"event_types"`
	IntegrationIDs []string  `json:"integration_ids"`
	RepositoryIDs  []string  `json:"repository_ids"`
	Disabled       bool      `json:"disabled"`
	Secret         string    `json:"secret,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// SubscriptionCreate is the body of POST /subscriptions. Empty filter lists mean every value;
// event_types entries are types or prefixes ending in "."; repository_ids are the hosts' ids.
// An empty secret is generated ("whsec_" + base64 of 32 random bytes).
type SubscriptionCreate struct {
	Name           string   `json:"name"`
	URL            string   `json:"url"`
	Secret         string   `json:"secret"`
	EventTypes     []string `json:"event_types"`
	IntegrationIDs []string `json:"integration_ids"`
	RepositoryIDs  []string `json:"repository_ids"`
	Disabled       bool     `json:"disabled"`
}

// SubscriptionPatch is the body of PATCH /subscriptions/{id}: absent fields keep their value.
// rotate_secret replaces the signing secret ("" generates one; the answer shows it once).
type SubscriptionPatch struct {
	Name           *string   `json:"name"`
	URL            *string   `json:"url"`
	EventTypes     *[]string `json:"event_types"`
	IntegrationIDs *[]string `json:"integration_ids"`
	RepositoryIDs  *[]string `json:"repository_ids"`
	Disabled       *bool     `json:"disabled"`
	RotateSecret   *string   `json:"rotate_secret"`
}

// SubscriptionAttempt is the delivery of one event to a subscription.
type SubscriptionAttempt struct {
	N              int64      `json:"n"`
	SubscriptionID string     `json:"subscription_id"`
	EventID        string     `json:"event_id"`
	EventType      string     `json:"event_type"`
	Status         string     `json:"status"` // pending, delivered, dead
	Tries          int        `json:"tries"`
	NextTryAt      *time.Time `json:"next_try_at,omitempty"` // while pending
	ResponseStatus int        `json:"response_status,omitempty"`
	Error          string     `json:"error,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	DeliveredAt    *time.Time `json:"delivered_at,omitempty"`
}

var attemptStatuses = []string{store.AttemptPending, store.AttemptDelivered, store.AttemptDead}

func subscriptionResource(sub store.Subscription, secret string) Subscription {
	orEmpty := func(v []string) []string {
		if v == nil {
			return []string{}
		}
		return v
	}
	return Subscription{ID: sub.ID, Name: sub.Name, URL: sub.URL, EventTypes: orEmpty(sub.EventTypes),
		IntegrationIDs: orEmpty(sub.IntegrationIDs), RepositoryIDs: orEmpty(sub.RepositoryIDs), Disabled: sub.Disabled,
		Secret: secret, CreatedAt: sub.CreatedAt, UpdatedAt: sub.UpdatedAt}
}

func attemptResource(a store.SubscriptionAttempt) SubscriptionAttempt {
	out := SubscriptionAttempt{N: a.N, SubscriptionID: a.SubscriptionID, EventID: a.EventID, EventType: a.EventType, Status: a.Status,
		Tries: a.Tries, ResponseStatus: a.ResponseStatus, Error: a.Error, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	if a.Status == store.AttemptPending && !a.NextAt.IsZero() {
		t := a.NextAt
		out.NextTryAt = &t
	}
	if !a.DeliveredAt.IsZero() {
		t := a.DeliveredAt
		out.DeliveredAt = &t
	}
	return out
}

// subscriptionFail answers bad subscription input with a 422 and the rest as fail does.
func (s *Server) subscriptionFail(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, outbound.ErrInvalid) {
		problem.Send(w, http.StatusUnprocessableEntity, "invalid-subscription", what+": the subscription is not valid", err.Error(),
			"Fix the field named; see docs/events.md, section Subscriptions.")
		return
	}
	s.fail(w, r, what, err)
}

// secretAnswer keeps an answer carrying a signing secret out of caches, and tells the
// Idempotency-Key store to seal it.
func secretAnswer(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
}

func (s *Server) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	subs, err := s.st.ListSubscriptions(r.Context())
	if err != nil {
		s.fail(w, r, "list subscriptions", err)
		return
	}
	out := List[Subscription]{Items: make([]Subscription, 0, len(subs))}
	for _, sub := range subs {
		out.Items = append(out.Items, subscriptionResource(sub, ""))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request) {
	var in SubscriptionCreate
	if !decode(w, r, &in) {
		return
	}
	sub, secret, err := s.subs.Create(r.Context(), outbound.Spec{Name: in.Name, URL: in.URL, Secret: in.Secret,
		EventTypes: in.EventTypes, IntegrationIDs: in.IntegrationIDs, RepositoryIDs: in.RepositoryIDs, Disabled: in.Disabled})
	if err != nil {
		s.subscriptionFail(w, r, "create subscription", err)
		return
	}
	secretAnswer(w)
	w.Header().Set("Location", Prefix+"/subscriptions/"+sub.ID)
	writeJSON(w, http.StatusCreated, subscriptionResource(sub, secret))
}

func (s *Server) getSubscription(w http.ResponseWriter, r *http.Request) {
	sub, err := s.st.GetSubscription(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, "get subscription", err)
		return
	}
	writeJSON(w, http.StatusOK, subscriptionResource(sub, ""))
}

func (s *Server) patchSubscription(w http.ResponseWriter, r *http.Request) {
	var p SubscriptionPatch
	if !decode(w, r, &p) {
		return
	}
	sub, secret, err := s.subs.Update(r.Context(), r.PathValue("id"), outbound.Patch{Name: p.Name, URL: p.URL, EventTypes: p.EventTypes,
		IntegrationIDs: p.IntegrationIDs, RepositoryIDs: p.RepositoryIDs, Disabled: p.Disabled, RotateSecret: p.RotateSecret})
	if err != nil {
		s.subscriptionFail(w, r, "change subscription", err)
		return
	}
	if secret != "" {
		secretAnswer(w)
	}
	writeJSON(w, http.StatusOK, subscriptionResource(sub, secret))
}

func (s *Server) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	if err := s.st.DeleteSubscription(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, r, "delete subscription", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listSubscriptionAttempts(w http.ResponseWriter, r *http.Request) {
	p, ok := page(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	f := store.SubscriptionAttemptFilter{SubscriptionID: id, Status: r.URL.Query().Get("status"), Page: p}
	if f.Status != "" && !slices.Contains(attemptStatuses, f.Status) {
		problem.Send(w, http.StatusBadRequest, "invalid-parameter", "Unknown attempt status", "status="+f.Status, fmt.Sprintf("Use one of %v.", attemptStatuses))
		return
	}
	if _, err := s.st.GetSubscription(r.Context(), id); err != nil {
		s.fail(w, r, "list attempts", err)
		return
	}
	items, next, err := s.st.ListSubscriptionAttempts(r.Context(), f)
	if err != nil {
		s.fail(w, r, "list attempts", err)
		return
	}
	out := List[SubscriptionAttempt]{Items: make([]SubscriptionAttempt, 0, len(items)), NextCursor: next}
	for _, a := range items {
		out.Items = append(out.Items, attemptResource(a))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) redeliverAttempt(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
	if err != nil || n <= 0 {
		problem.Send(w, http.StatusBadRequest, "invalid-parameter", "The attempt number is not valid", "n="+r.PathValue("n"), "Use the n of an attempt from GET /api/v1/subscriptions/{id}/attempts.")
		return
	}
	a, err := s.subs.Redeliver(r.Context(), r.PathValue("id"), n)
	if err != nil {
		s.fail(w, r, "redeliver attempt", err)
		return
	}
	writeJSON(w, http.StatusAccepted, attemptResource(a))
}
