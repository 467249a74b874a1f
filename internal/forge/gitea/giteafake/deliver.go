package giteafake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge/gitea/giteawebhook"
)

// Delivery is the outcome of one webhook delivery the fake made.
type Delivery struct {
	HookID int64
	URL    string
	// ID is the X-Gitea-Delivery value.
	ID string
	// Event is X-Gitea-Event (push, create, pull_request, …); EventType X-Gitea-Event-Type
	// (pull_request_sync, …).
	Event     string
	EventType string
	// Status is the receiver's HTTP status; 0 when it could not be reached (Err says why).
	Status int
	Err    error
}

// Payloads, as modules/structs/hook.go has them.

type pushPayload struct {
	Ref          string              `json:"ref"`
	Before       string              `json:"before"`
	After        string              `json:"after"`
	CompareURL   string              `json:"compare_url"`
	Commits      []payloadCommitJSON `json:"commits"`
	TotalCommits int                 `json:"total_commits"`
	HeadCommit   *payloadCommitJSON  `json:"head_commit"`
	Repository   repoJSON            `json:"repository"`
	Pusher       userJSON            `json:"pusher"`
	Sender       userJSON            `json:"sender"`
}

type createPayload struct {
	SHA        string   `json:"sha"`
	Ref        string   `json:"ref"`
	RefType    string   `json:"ref_type"`
	Repository repoJSON `json:"repository"`
	Sender     userJSON `json:"sender"`
}

type deletePayload struct {
	Ref        string   `json:"ref"`
	RefType    string   `json:"ref_type"`
	PusherType string   `json:"pusher_type"`
	Repository repoJSON `json:"repository"`
	Sender     userJSON `json:"sender"`
}

type pullPayload struct {
	Action      string   `json:"action"`
	Number      int64    `json:"number"`
	PullRequest pullJSON `json:"pull_request"`
	Repository  repoJSON `json:"repository"`
	Sender      userJSON `json:"sender"`
	CommitID    string   `json:"commit_id"`
}

// outgoing is one delivery, prepared under the lock and sent without it.
type outgoing struct {
	hook        *hook
	url         string
	contentType string
	secret      string
	authHeader  string
	event       string
	eventType   string
	payload     []byte
}

// eventName is Gitea's HookEventType.Event(): the coarse name X-Gitea-Event carries.
func eventName(eventType string) string {
	switch eventType {
	case "issues", "issue_assign", "issue_label", "issue_milestone":
		return "issues"
	case "issue_comment", "pull_request_comment":
		return "issue_comment"
	case "pull_request_review_approved":
		return "pull_request_approved"
	case "pull_request_review_rejected":
		return "pull_request_rejected"
	case "pull_request_review_comment":
		return "pull_request_comment"
	}
	if strings.HasPrefix(eventType, "pull_request") {
		return "pull_request"
	}
	return eventType
}

// branchMatches is Gitea's branch filter: empty or "*" lets everything through; otherwise a
// glob, with {a,b} alternatives.
func branchMatches(filter, branch string) bool {
	if filter == "" || filter == "*" {
		return true
	}
	for _, alt := range expandBraces(filter) {
		if ok, _ := path.Match(alt, branch); ok {
			return true
		}
	}
	return false
}

func expandBraces(p string) []string {
	open := strings.IndexByte(p, '{')
	end := strings.IndexByte(p, '}')
	if open < 0 || end < open {
		return []string{p}
	}
	var out []string
	for _, alt := range strings.Split(p[open+1:end], ",") {
		out = append(out, expandBraces(p[:open]+alt+p[end+1:])...)
	}
	return out
}

// prepareLocked encodes payload and selects the hooks that get it, as Gitea's PrepareWebhooks
// does: active hooks that chose eventType and whose branch filter lets branch through
// (branch "" has none to check). only, when set, is the one hook of a test delivery, which is
// sent only when that hook is active.
func (s *Server) prepareLocked(r *repo, eventType string, payload any, branch string, only int64) []outgoing {
	body, err := json.MarshalIndent(payload, "", "  ")
	if err != nil {
		s.t.Errorf("giteafake: encode %s payload: %v", eventType, err)
		return nil
	}
	var out []outgoing
	for _, h := range r.hooks {
		switch {
		case only != 0 && h.id != only, !h.active:
			continue
		case only == 0 && !h.hasEvent(eventType):
			continue
		case branch != "" && !branchMatches(h.branchFilter, branch):
			continue
		}
		out = append(out, outgoing{hook: h, url: h.url, contentType: h.contentType, secret: h.secret,
			authHeader: h.authHeader, event: eventName(eventType), eventType: eventType, payload: body})
	}
	return out
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// send delivers each prepared delivery in order, with Gitea's headers, and records the
// outcome on the fake and on the hook's last status.
func (s *Server) send(out []outgoing) {
	for _, o := range out {
		d := s.sendOne(o)
		s.mu.Lock()
		s.deliveries = append(s.deliveries, d)
		if d.Status >= 200 && d.Status <= 299 {
			o.hook.lastStatus = "succeed"
		} else {
			o.hook.lastStatus = "fail"
		}
		s.mu.Unlock()
	}
}

func (s *Server) sendOne(o outgoing) Delivery {
	d := Delivery{HookID: o.hook.id, URL: o.url, ID: newUUID(), Event: o.event, EventType: o.eventType}
	body, ct := o.payload, "application/json"
	if o.contentType == "form" {
		body, ct = []byte(url.Values{"payload": {string(o.payload)}}.Encode()), "application/x-www-form-urlencoded"
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url, bytes.NewReader(body))
	if err != nil {
		d.Err = fmt.Errorf("build delivery: %w", err)
		return d
	}
	sig1, sig256 := "", ""
	if o.secret != "" {
		m := hmac.New(sha1.New, []byte(o.secret))
		m.Write(o.payload) // Gitea signs the JSON payload, also for form hooks
		sig1 = hex.EncodeToString(m.Sum(nil))
		sig256 = giteawebhook.Sign(o.secret, o.payload)
	}
	h := req.Header
	h.Set("Content-Type", ct)
	if s.opts.Forgejo {
		h.Set("X-Forgejo-Delivery", d.ID)
		h.Set("X-Forgejo-Event", o.event)
		h.Set("X-Forgejo-Event-Type", o.eventType)
		h.Set("X-Forgejo-Signature", sig256)
	}
	h.Set("X-Gitea-Delivery", d.ID)
	h.Set("X-Gitea-Event", o.event)
	h.Set("X-Gitea-Event-Type", o.eventType)
	h.Set("X-Gitea-Signature", sig256)
	h.Set("X-Gogs-Delivery", d.ID)
	h.Set("X-Gogs-Event", o.event)
	h.Set("X-Gogs-Event-Type", o.eventType)
	h.Set("X-Gogs-Signature", sig256)
	h.Set("X-Hub-Signature", "sha1="+sig1)
	h.Set("X-Hub-Signature-256", "sha256="+sig256)
	h["X-GitHub-Delivery"] = []string{d.ID}
	h["X-GitHub-Event"] = []string{o.event}
	h["X-GitHub-Event-Type"] = []string{o.eventType}
	if o.authHeader != "" {
		h.Set("Authorization", o.authHeader)
	}
	client := s.opts.DeliveryClient
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		d.Err = err
		return d
	}
	resp.Body.Close()
	d.Status = resp.StatusCode
	return d
}

// Deliveries returns every delivery the fake made, in order.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

// Deliver sends payload as Gitea sends eventType ("push", "pull_request_sync", …) for the
// repository: to every active hook of it that chose the event. branch, when set, is checked
// against the hooks' branch filters. It returns the deliveries made.
func (s *Server) Deliver(fullName, eventType string, payload any, branch string) []Delivery {
	out, before := func() ([]outgoing, int) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.prepareLocked(s.mustRepoLocked(fullName), eventType, payload, branch, 0), len(s.deliveries)
	}()
	s.send(out)
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries[before:])
}

// zeroSHA is Gitea's empty object id in SHA-1 repositories.
const zeroSHA = "0000000000000000000000000000000000000000"

// refChangedLocked is what Gitea does after a ref moved (a push, a branch created or deleted
// through the API): the create, push and delete deliveries of services/repository/push.go,
// in its order, and pull_request_sync for the open pull requests whose head branch moved.
// old "" is a new ref, new "" a deleted one.
func (s *Server) refChangedLocked(r *repo, pusher *account, ref, old, new string) []outgoing {
	if pusher == nil {
		pusher = r.owner
	}
	r.updated = s.now()
	repoObj, sender := s.repoJSON(r, "owner"), s.userJSON(pusher)
	before, after := old, new
	if before == "" {
		before = zeroSHA
	}
	if after == "" {
		after = zeroSHA
	}
	push := func(commits []payloadCommitJSON, total int, head *payloadCommitJSON, compare string) pushPayload {
		if commits == nil {
			commits = []payloadCommitJSON{}
		}
		return pushPayload{Ref: ref, Before: before, After: after, CompareURL: s.URL + "/" + compare,
			Commits: commits, TotalCommits: total, HeadCommit: head, Repository: repoObj, Pusher: sender, Sender: sender}
	}
	var out []outgoing
	if branch, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		switch {
		case new == "":
			out = append(out, s.prepareLocked(r, "delete", deletePayload{Ref: branch, RefType: "branch", PusherType: "user", Repository: repoObj, Sender: sender}, branch, 0)...)
		case old == "":
			commits, total := s.pushCommitsLocked(r, "", new)
			head := s.commitJSON(r, new)
			out = append(out, s.prepareLocked(r, "create", createPayload{SHA: new, Ref: branch, RefType: "branch", Repository: repoObj, Sender: sender}, branch, 0)...)
			out = append(out, s.prepareLocked(r, "push", push(commits, total, &head, ""), branch, 0)...)
		default:
			commits, total := s.pushCommitsLocked(r, old, new)
			head := s.commitJSON(r, new)
			compare := r.fullName() + "/compare/" + old + "..." + new
			out = append(out, s.prepareLocked(r, "push", push(commits, total, &head, compare), branch, 0)...)
			for _, p := range r.pulls {
				if p.state == "open" && p.head == branch {
					p.headSHA, p.updated = new, s.now()
					out = append(out, s.prepareLocked(r, "pull_request_sync", s.pullPayloadLocked(r, p, "synchronized", pusher), "", 0)...)
				}
			}
		}
		return out
	}
	if tag, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
		out = append(out, s.prepareLocked(r, "push", push(nil, 0, nil, ""), "", 0)...)
		if new == "" {
			out = append(out, s.prepareLocked(r, "delete", deletePayload{Ref: tag, RefType: "tag", PusherType: "user", Repository: repoObj, Sender: sender}, "", 0)...)
		} else {
			out = append(out, s.prepareLocked(r, "create", createPayload{SHA: new, Ref: tag, RefType: "tag", Repository: repoObj, Sender: sender}, "", 0)...)
		}
	}
	return out
}

func (s *Server) pullPayloadLocked(r *repo, p *pull, action string, sender *account) pullPayload {
	return pullPayload{Action: action, Number: p.number, PullRequest: s.pullJSON(r, p),
		Repository: s.repoJSON(r, "owner"), Sender: s.userJSON(sender)}
}

// ClosePullRequest closes a pull request as by (a login), merging it when merged (as a
// fast-forward of its base branch to its head), and sends Gitea's pull_request "closed"
// delivery. It returns the deliveries made.
func (s *Server) ClosePullRequest(fullName string, number int64, by string, merged bool) []Delivery {
	out, before := func() ([]outgoing, int) {
		s.mu.Lock()
		defer s.mu.Unlock()
		r := s.mustRepoLocked(fullName)
		var p *pull
		for _, x := range r.pulls {
			if x.number == number && x.state == "open" {
				p = x
			}
		}
		if p == nil {
			s.t.Fatalf("giteafake: no open pull request %d on %s", number, fullName)
		}
		actor := s.accountLocked(by, false)
		now := s.now()
		p.state, p.closed, p.updated = "closed", now, now
		if merged {
			p.merged, p.mergeSHA, p.mergedBy = true, p.headSHA, actor
			if err := s.setBranchLocked(r, p.base, p.headSHA); err != nil {
				s.t.Fatalf("giteafake: merge pull request %d on %s: %v", number, fullName, err)
			}
		}
		return s.prepareLocked(r, "pull_request", s.pullPayloadLocked(r, p, "closed", actor), "", 0), len(s.deliveries)
	}()
	s.send(out)
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries[before:])
}
