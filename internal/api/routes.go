package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/problem"
	"github.com/forgeway/forgeway/internal/store"
)

func (s *Server) routeTable() []Route {
	p := Prefix
	r := func(method, path, summary, tag string, a access, req, resp string, status int, h http.HandlerFunc, query ...string) Route {
		return Route{Method: method, Path: path, Summary: summary, Tag: tag, Access: a, Request: req, Response: resp, Status: status, handler: h, Query: query}
	}
	return []Route{
		r("GET", p+"/openapi.json", "This OpenAPI document", "meta", public, "", "", 200, s.openAPI),
		r("GET", p+"/kinds", "Host kinds and the fields their integrations take", "meta", member, "", "KindList", 200, s.listKinds),

		r("GET", p+"/integrations", "List integrations", "integrations", member, "", "IntegrationList", 200, s.listIntegrations),
		r("POST", p+"/integrations", "Connect a host: create an integration (its credential is checked by a first discovery)", "integrations", member, "IntegrationCreate", "Integration", 201, s.createIntegration),
		r("GET", p+"/integrations/{id}", "Get an integration", "integrations", member, "", "Integration", 200, s.getIntegration),
		r("PATCH", p+"/integrations/{id}", "Change an integration (settings, secrets, filter, schedule, webhook secret rotation)", "integrations", member, "IntegrationPatch", "Integration", 200, s.patchIntegration),
		r("DELETE", p+"/integrations/{id}", "Delete an integration and its catalog", "integrations", member, "", "", 204, s.deleteIntegration),
		r("POST", p+"/integrations/{id}/test", "Diagnose an integration: each check ok or failed with what to do", "integrations", member, "", "Diagnosis", 200, s.testIntegration),
		r("POST", p+"/integrations/{id}/suspend", "Suspend an integration (no discovery, no host calls)", "integrations", member, "", "Integration", 200, s.setIntegrationStatus(store.StatusSuspended)),
		r("POST", p+"/integrations/{id}/resume", "Resume a suspended integration", "integrations", member, "", "Integration", 200, s.setIntegrationStatus(store.StatusActive)),
		r("POST", p+"/integrations/{id}/refresh", "Discover the integration's repositories now", "integrations", member, "", "Job", 202, s.refreshIntegration),
		r("POST", p+"/integrations/{id}/reconcile", "Check the hooks of attached repositories and repair missing ones", "integrations", member, "", "Job", 202, s.reconcileIntegration),
		r("GET", p+"/integrations/{id}/{kind}/manifest", "Start creating the host-side App (GitHub app-manifest flow): a URL to open in a browser", "app setup", member, "", "AppFlow", 200, s.startManifest),
		r("GET", p+"/integrations/{id}/{kind}/install", "Start installing the App: a URL to open in a browser", "app setup", member, "", "AppFlow", 200, s.startInstall, "user"),
		r("GET", "/callback/{kind}", "Where the host sends the browser back (manifest conversion, installation setup, OAuth code)", "app setup", public, "", "", 200, s.callback, "code", "state", "installation_id", "setup_action"),
		r("GET", "/callback/{kind}/manifest", "The form that posts the App manifest to the host", "app setup", public, "", "", 200, s.flowPage("manifest"), "state"),
		r("GET", "/callback/{kind}/install", "Redirect to the App's installation page on the host", "app setup", public, "", "", 302, s.flowPage("install"), "state"),

		r("GET", p+"/repositories", "List the catalog", "repositories", member, "", "RepositoryList", 200, s.listRepositories, "integration", "q", "group", "attached", "matched", "limit", "cursor"),
		r("GET", p+"/repositories/{id}", "Get a repository", "repositories", member, "", "Repository", 200, s.getRepository),
		r("POST", p+"/repositories/{id}/attach", "Attach: create the hooks on the host and mirror the repository", "repositories", member, "", "Job", 202, s.repoAction("attach", s.cat.Attach)),
		r("POST", p+"/repositories/{id}/detach", "Detach: remove the hooks from the host and the mirror", "repositories", member, "", "Job", 202, s.repoAction("detach", s.cat.Detach)),
		r("POST", p+"/repositories/{id}/sync", "Fetch the mirror now", "repositories", member, "", "Job", 202, s.repoAction("sync", s.cat.Sync)),
		r("POST", p+"/repositories/{id}/push", "Push refs from the mirror to the host", "repositories", member, "PushRequest", "Job", 202, s.pushRepository),
		r("GET", p+"/repositories/{id}/branches", "List branches on the host", "repositories", member, "", "RefList", 200, s.listBranches),
		r("POST", p+"/repositories/{id}/branches", "Create a branch on the host, as the acting person when user is set", "repositories", member, "BranchCreate", "Ref", 201, s.createBranch),
		r("POST", p+"/repositories/{id}/pulls", "Open a pull request, as the acting person when user is set", "repositories", member, "PullCreate", "PullRequest", 201, s.createPull),

		r("GET", p+"/deliveries", "List received webhook deliveries", "deliveries", member, "", "DeliveryList", 200, s.listDeliveries, "integration", "status", "limit", "cursor"),
		r("GET", p+"/deliveries/{id}", "Get a delivery: headers, body, outcome, events produced", "deliveries", member, "", "Delivery", 200, s.getDelivery),
		r("GET", p+"/deliveries/{id}/body", "The delivery's body exactly as received", "deliveries", member, "", "", 200, s.deliveryBody),
		r("POST", p+"/deliveries/{id}/replay", "Process a delivery again (its events keep their ids)", "deliveries", member, "", "Job", 202, s.replayDelivery),

		r("GET", p+"/events", "Read the event log after a cursor", "events", member, "", "EventList", 200, s.listEvents, "after", "type", "repository", "integration", "limit"),
		r("GET", p+"/events/stream", "Stream events (server-sent events; resumes from Last-Event-ID)", "events", member, "", "", 200, s.streamEvents, "after", "type", "repository", "integration"),

		r("GET", p+"/jobs", "List jobs (dead-lettered ones with state=dead)", "jobs", admin, "", "JobList", 200, s.listJobs, "state", "kind", "limit", "cursor"),
		r("GET", p+"/jobs/{id}", "Get a job: state, progress, error", "jobs", member, "", "Job", 200, s.getJob),
		r("POST", p+"/jobs/{id}/retry", "Run a dead job again", "jobs", admin, "", "Job", 202, s.retryJob),

		r("GET", p+"/subscriptions", "List outbound event subscriptions", "subscriptions", admin, "", "SubscriptionList", 200, s.listSubscriptions),
		r("POST", p+"/subscriptions", "Subscribe an HTTP endpoint to events (signed per Standard Webhooks; the secret is shown once)", "subscriptions", admin, "SubscriptionCreate", "Subscription", 201, s.createSubscription),
		r("GET", p+"/subscriptions/{id}", "Get a subscription", "subscriptions", admin, "", "Subscription", 200, s.getSubscription),
		r("PATCH", p+"/subscriptions/{id}", "Change a subscription (URL, filters, disabled, secret rotation)", "subscriptions", admin, "SubscriptionPatch", "Subscription", 200, s.patchSubscription),
		r("DELETE", p+"/subscriptions/{id}", "Delete a subscription and its attempts", "subscriptions", admin, "", "", 204, s.deleteSubscription),
		r("GET", p+"/subscriptions/{id}/attempts", "List a subscription's delivery attempts, newest first (dead-lettered ones with status=dead)", "subscriptions", admin, "", "SubscriptionAttemptList", 200, s.listSubscriptionAttempts, "status", "limit", "cursor"),
		r("POST", p+"/subscriptions/{id}/attempts/{n}/redeliver", "Send an attempt's event again now, with a fresh retry schedule", "subscriptions", admin, "", "SubscriptionAttempt", 202, s.redeliverAttempt),

		r("PUT", p+"/users/{user}/credentials/{integration}", "Store a person's own token on an integration", "credentials", member, "CredentialPut", "Credential", 200, s.putCredential),
		r("GET", p+"/users/{user}/credentials/{integration}", "Whether a person has a credential, and whose it is", "credentials", member, "", "Credential", 200, s.getCredential),
		r("DELETE", p+"/users/{user}/credentials/{integration}", "Delete a person's credential", "credentials", member, "", "", 204, s.deleteCredential),

		r("GET", p+"/projects", "List projects", "access", member, "", "ProjectList", 200, s.listProjects),
		r("POST", p+"/projects", "Create a project", "access", admin, "Project", "Project", 201, s.createProject),
		r("GET", p+"/projects/{id}/integrations", "List a project's integrations", "access", member, "", "IntegrationList", 200, s.projectIntegrations),
		r("GET", p+"/tokens", "List API tokens", "access", admin, "", "TokenList", 200, s.listTokens),
		r("POST", p+"/tokens", "Create an API token (its value is shown once)", "access", admin, "TokenCreate", "Token", 201, s.createToken),
		r("DELETE", p+"/tokens/{id}", "Delete an API token", "access", admin, "", "", 204, s.deleteToken),

		// Served by other packages (ingest, server); listed here so the document covers them.
		r("POST", "/webhooks/{kind}", "Receive a host-level delivery (a GitHub App's webhook): the integration is found from the App and installation; verified with the host's scheme, committed, then answered 202", "webhooks", public, "", "Accepted", 202, nil),
		r("POST", "/webhooks/{kind}/{integration}", "Receive a delivery for one integration (repository hooks): verified, committed, then answered 202; a repeated delivery id answers 202 with duplicate=true", "webhooks", public, "", "Accepted", 202, nil),
		r("GET", "/healthz", "The process is alive", "operations", public, "", "", 200, nil),
		r("GET", "/readyz", "The database is reachable and migrated", "operations", public, "", "", 200, nil),
		r("GET", "/metrics", "Prometheus metrics", "operations", public, "", "", 200, nil),
	}
}

// idempotencyTTL is how long a write's answer is kept for replays under the same key.
const idempotencyTTL = 24 * time.Hour

type savedAnswer struct {
	RequestHash string    `json:"request_hash"`
	Status      int       `json:"status"`
	ContentType string    `json:"content_type"`
	Location    string    `json:"location,omitempty"`
	Body        []byte    `json:"body"`
	Sealed      bool      `json:"sealed,omitempty"` // Body is sealed with the keyring (it holds a secret)
	At          time.Time `json:"at"`
}

// idempotent replays the first answer to a write retried with the same Idempotency-Key (per
// token and route); the same key with a different body is refused.
func (s *Server) idempotent(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if key == "" {
			next(w, r)
			return
		}
		if len(key) > 255 {
			problem.Send(w, http.StatusBadRequest, "invalid-idempotency-key", "Idempotency-Key is too long", "at most 255 characters", "")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			problem.Send(w, http.StatusRequestEntityTooLarge, "body-too-large", "The request body is too large", "", "")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.Sum256(append([]byte(r.Method+" "+r.URL.RequestURI()+"\n"), body...))
		reqHash := hex.EncodeToString(sum[:])
		ks := sha256.Sum256([]byte(tokenFrom(r.Context()).ID + "\x00" + r.Method + " " + r.URL.Path + "\x00" + key))
		kvKey := "idem/" + hex.EncodeToString(ks[:])
		if raw, err := s.st.GetKV(r.Context(), kvKey); err == nil {
			var a savedAnswer
			if json.Unmarshal(raw, &a) == nil && s.now().Sub(a.At) < idempotencyTTL {
				if a.RequestHash != reqHash {
					problem.Send(w, http.StatusUnprocessableEntity, "idempotency-key-reused", "The Idempotency-Key was used for a different request", "", "Use a new key for a new request.")
					return
				}
				if a.Sealed {
					// The answer carries a secret (Cache-Control: no-store): it was kept sealed.
					body, err := s.ints.Keys().Open(a.Body)
					if err != nil {
						s.fail(w, r, "replay answer", fmt.Errorf("open the saved answer: %w", err))
						return
					}
					a.Body = body
					w.Header().Set("Cache-Control", "no-store")
				}
				if a.Location != "" {
					w.Header().Set("Location", a.Location)
				}
				w.Header().Set("Content-Type", a.ContentType)
				w.Header().Set("Idempotent-Replayed", "true")
				w.WriteHeader(a.Status)
				_, _ = w.Write(a.Body)
				return
			}
		}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		next(rec, r)
		if rec.status < 500 {
			a := savedAnswer{RequestHash: reqHash, Status: rec.status, ContentType: rec.Header().Get("Content-Type"), Location: rec.Header().Get("Location"), Body: rec.body.Bytes(), At: s.now().UTC()}
			if strings.Contains(rec.Header().Get("Cache-Control"), "no-store") {
				sealed, err := s.ints.Keys().Seal(a.Body)
				if err != nil {
					return // not kept: a retry makes a new answer rather than store a secret in the clear
				}
				a.Body, a.Sealed = sealed, true
			}
			raw, _ := json.Marshal(a)
			_ = s.st.PutKV(r.Context(), kvKey, raw)
		}
	}
}

type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}
