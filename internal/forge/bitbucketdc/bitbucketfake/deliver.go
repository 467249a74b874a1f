package bitbucketfake

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge/bitbucketdc/bbwebhook"
)

// Delivery is the outcome of one webhook delivery the fake made.
type Delivery struct {
	HookID    int
	URL       string
	Event     string
	RequestID string // the X-Request-Id sent
	Body      []byte
	// Status is the receiver's HTTP status; 0 when it could not be reached (Err says why).
	Status int
	Err    error
}

// Deliveries returns every delivery made so far, in order.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// deliverLocked queues event with payload to every active webhook of r subscribed to it
// (every webhook, for the test ping with only). The body is encoded now, so later changes to
// the state do not show in it.
func (s *Server) deliverLocked(r *repo, event string, payload any, only *hook) {
	body, err := json.Marshal(payload)
	if err != nil {
		s.t.Errorf("bitbucketfake: encode %s payload: %v", event, err)
		return
	}
	for _, h := range r.hooks {
		if only != nil && h != only {
			continue
		}
		if only == nil && (!h.active || !slices.Contains(h.events, event)) {
			continue
		}
		target := *h // the delivery uses the webhook as it is now
		s.queue.add(func() { s.send(r, h, target, event, body) })
	}
}

// send POSTs one delivery with Bitbucket's headers and records the outcome in the webhook's
// statistics and the delivery log.
func (s *Server) send(r *repo, h *hook, target hook, event string, body []byte) {
	d := Delivery{HookID: target.id, URL: target.url, Event: event, RequestID: newUUID(), Body: body}
	start := s.now()
	inv := &invocation{event: event, url: target.url, start: start}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.url, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set("User-Agent", "Atlassian HttpClient 4.2.0 / Bitbucket-"+s.opts.Version+" / Default")
		req.Header.Set(bbwebhook.HeaderEvent, event)
		req.Header.Set(bbwebhook.HeaderRequestID, d.RequestID)
		if target.secret != "" {
			req.Header.Set(bbwebhook.HeaderSignature, bbwebhook.Sign(target.secret, body))
		}
		client := s.opts.DeliveryClient
		if client == nil {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: !target.sslVerify} //nolint:gosec // the webhook asked for it
			defer tr.CloseIdleConnections()
			client = &http.Client{Transport: tr}
		}
		var resp *http.Response
		if resp, err = client.Do(req); err == nil {
			resp.Body.Close()
			d.Status = resp.StatusCode
		}
	}
	d.Err = err
	s.mu.Lock()
	defer s.mu.Unlock()
	inv.id, inv.finish = s.nextID(), s.now()
	switch {
	case err != nil:
		inv.outcome, inv.description = "ERROR", err.Error()
		h.lastError = inv
		h.errors++
	case d.Status < 200 || d.Status > 299:
		inv.outcome, inv.description = "FAILURE", fmt.Sprintf("%d %s", d.Status, http.StatusText(d.Status))
		h.lastFailure = inv
		h.failures++
	default:
		inv.outcome, inv.description = "SUCCESS", fmt.Sprintf("%d %s", d.Status, http.StatusText(d.Status))
		h.lastSuccess = inv
		h.successes++
	}
	s.deliveries = append(s.deliveries, d)
}

// Change is one ref a push changed. From is empty (or zeros) for a created ref, To for a
// deleted one.
type Change struct {
	Ref  string // refs/heads/main or refs/tags/v1
	From string
	To   string
}

const zeroSHA = "0000000000000000000000000000000000000000"

func refChangeJSON(c Change) map[string]any {
	from, to := c.From, c.To
	typ := "UPDATE"
	if from == "" || from == zeroSHA {
		from, typ = zeroSHA, "ADD"
	}
	if to == "" || to == zeroSHA {
		to, typ = zeroSHA, "DELETE"
	}
	refType, display := "BRANCH", strings.TrimPrefix(c.Ref, "refs/heads/")
	if t, ok := strings.CutPrefix(c.Ref, "refs/tags/"); ok {
		refType, display = "TAG", t
	}
	return map[string]any{
		"ref":   map[string]any{"id": c.Ref, "displayId": display, "type": refType},
		"refId": c.Ref, "fromHash": from, "toHash": to, "type": typ,
	}
}

// pushedLocked delivers repo:refs_changed for changes pushed by who, then updates the pull
// requests whose source branch moved (pr:from_ref_updated) or whose target did.
func (s *Server) pushedLocked(r *repo, who *user, changes []Change) {
	if len(changes) == 0 {
		return
	}
	list := make([]map[string]any, 0, len(changes))
	for _, c := range changes {
		list = append(list, refChangeJSON(c))
	}
	actor := s.userJSON(who)
	s.deliverLocked(r, "repo:refs_changed", map[string]any{
		"eventKey": "repo:refs_changed", "date": eventDate(s.now()), "actor": actor,
		"repository": s.repoJSON(r), "changes": list,
	}, nil)
	for _, c := range changes {
		if c.To == "" || c.To == zeroSHA {
			continue
		}
		for _, to := range s.repos {
			for _, p := range to.pulls {
				if p.state != "OPEN" {
					continue
				}
				if to == r && p.toRef == c.Ref {
					p.toSHA = c.To
				}
				if p.from == r && p.fromRef == c.Ref && p.fromSHA != c.To {
					previous := p.fromSHA
					p.fromSHA, p.updated = c.To, s.now()
					p.version++
					s.deliverPullLocked(to, p, "pr:from_ref_updated", who, map[string]any{"previousFromHash": previous})
				}
			}
		}
	}
}

// deliverPullLocked delivers a pull request event about p (in repository to), with the
// event's extra fields.
func (s *Server) deliverPullLocked(to *repo, p *pull, event string, who *user, extra map[string]any) {
	payload := map[string]any{"eventKey": event, "date": eventDate(s.now()), "actor": s.userJSON(who), "pullRequest": s.pullJSON(to, p)}
	for k, v := range extra {
		payload[k] = v
	}
	s.deliverLocked(to, event, payload, nil)
}

// Push applies changes to an in-memory repository's branches and tags as a push by login
// would, and delivers what Bitbucket delivers for it. Repositories with real git data are
// pushed to with git instead.
func (s *Server) Push(fullName, login string, changes ...Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepoLocked(fullName)
	if r.gitDir != "" {
		s.t.Fatalf("bitbucketfake: %s has real git data: push with git", fullName)
	}
	changes = slices.Clone(changes)
	for i, c := range changes {
		refs, name := r.branches, strings.TrimPrefix(c.Ref, "refs/heads/")
		if t, ok := strings.CutPrefix(c.Ref, "refs/tags/"); ok {
			refs, name = r.tags, t
		}
		if c.From == "" {
			changes[i].From = refs[name]
		}
		if c.To == "" || c.To == zeroSHA {
			delete(refs, name)
			continue
		}
		refs[name], r.commits[c.To] = c.To, true
	}
	s.pushedLocked(r, s.userLocked(login), changes)
}

func (s *Server) pullLocked(fullName string, id int) (*repo, *pull) {
	r := s.mustRepoLocked(fullName)
	for _, p := range r.pulls {
		if p.id == id {
			return r, p
		}
	}
	s.t.Fatalf("bitbucketfake: no pull request %d in %s", id, fullName)
	return nil, nil
}

// MergePullRequest merges an open pull request as login and delivers pr:merged; the merge
// commit is mergeSHA (a made-up one when empty).
func (s *Server) MergePullRequest(fullName string, id int, login, mergeSHA string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p := s.pullLocked(fullName, id)
	if mergeSHA == "" {
		mergeSHA = fakeSHA(fullName, "merge", itoa(id))
	}
	p.state, p.mergeSHA, p.closed, p.updated = "MERGED", mergeSHA, s.now(), s.now()
	p.version++
	s.deliverPullLocked(r, p, "pr:merged", s.userLocked(login), nil)
}

// DeclinePullRequest declines an open pull request as login and delivers pr:declined.
func (s *Server) DeclinePullRequest(fullName string, id int, login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p := s.pullLocked(fullName, id)
	p.state, p.closed, p.updated = "DECLINED", s.now(), s.now()
	p.version++
	s.deliverPullLocked(r, p, "pr:declined", s.userLocked(login), nil)
}

// DeletePullRequest deletes a pull request as login and delivers pr:deleted with the pull
// request as it was.
func (s *Server) DeletePullRequest(fullName string, id int, login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p := s.pullLocked(fullName, id)
	s.deliverPullLocked(r, p, "pr:deleted", s.userLocked(login), nil)
	r.pulls = slices.DeleteFunc(r.pulls, func(x *pull) bool { return x == p })
}

// EditPullRequest changes a pull request's title and description as login and delivers
// pr:modified with the previous values.
func (s *Server) EditPullRequest(fullName string, id int, login, title, description string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p := s.pullLocked(fullName, id)
	prevTitle, prevDescription := p.title, p.description
	p.title, p.description, p.updated = title, description, s.now()
	p.version++
	target := strings.TrimPrefix(p.toRef, "refs/heads/")
	s.deliverPullLocked(r, p, "pr:modified", s.userLocked(login), map[string]any{
		"previousTitle": prevTitle, "previousDescription": prevDescription,
		"previousTarget": map[string]any{"id": p.toRef, "displayId": target, "type": "BRANCH", "latestCommit": p.toSHA, "latestChangeset": p.toSHA},
	})
}

// Ping delivers diagnostics:ping to one webhook, as its "Test connection" button does: the
// body is {"test": true}, signed with the webhook's secret.
func (s *Server) Ping(fullName string, hookID int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepoLocked(fullName)
	for _, h := range r.hooks {
		if h.id == hookID {
			s.deliverLocked(r, bbwebhook.EventPing, map[string]bool{"test": true}, h)
			return
		}
	}
	s.t.Fatalf("bitbucketfake: no webhook %d on %s", hookID, fullName)
}
