package githubfake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Delivery is the outcome of one webhook delivery the fake made.
type Delivery struct {
	// Target is "hook:<id>" for a repository webhook or "app:<id>" for an App's webhook.
	Target string
	URL    string
	// ID is the X-GitHub-Delivery value.
	ID string
	// Status is the receiver's HTTP status; 0 when it could not be reached (Err says why).
	Status int
	Err    error
}

type target struct {
	name        string
	url         string
	secret      string
	contentType string
	insecure    bool
	hookID      int64
	targetType  string
	targetID    int64
	install     *installation
	hook        *hook
}

// Deliver sends event with payload, signed, to every active webhook of repo subscribed to
// the event and to the webhook of every App installed on repo, as GitHub does; App deliveries
// get the "installation" object added when the payload lacks it. repo "" delivers to every
// App's webhook only (events about installations). It returns one Delivery per target, in
// order: repository hooks by id, then Apps by id.
func (s *Server) Deliver(ctx context.Context, repoName, event string, payload []byte) ([]Delivery, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(payload, &obj); err != nil {
		return nil, fmt.Errorf("payload is not a JSON object: %w", err)
	}
	targets, err := s.targets(repoName, event)
	if err != nil {
		return nil, err
	}
	out := make([]Delivery, 0, len(targets))
	for _, tg := range targets {
		body := payload
		if tg.install != nil {
			if _, has := obj["installation"]; !has {
				withInst := make(map[string]json.RawMessage, len(obj)+1)
				for k, v := range obj {
					withInst[k] = v
				}
				inst, _ := json.Marshal(map[string]any{"id": tg.install.id, "node_id": nodeID("Installation", tg.install.id)})
				withInst["installation"] = inst
				body, _ = json.Marshal(withInst)
			}
		}
		out = append(out, s.send(ctx, tg, event, body))
	}
	return out, nil
}

func (s *Server) targets(repoName, event string) ([]target, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []target
	var r *repo
	if repoName != "" {
		id, ok := s.names[strings.ToLower(repoName)]
		if !ok {
			return nil, fmt.Errorf("no repository %s", repoName)
		}
		r = s.repos[id]
		for _, h := range r.hooks {
			if !h.active || !(slices.Contains(h.events, event) || slices.Contains(h.events, "*")) {
				continue
			}
			out = append(out, target{
				name: fmt.Sprintf("hook:%d", h.id), url: h.url, secret: h.secret, contentType: h.contentType,
				insecure: h.insecureSSL == "1", hookID: h.id, targetType: "repository", targetID: r.id, hook: h,
			})
		}
	}
	for _, in := range s.sortedInstalls() {
		a := s.apps[in.appID]
		// A suspended installation gets no events, except the installation events that report
		// its own suspension and unsuspension, as GitHub sends them.
		if a.webhookURL == "" || (r != nil && !in.covers(r)) || (in.suspended && event != "installation") {
			continue
		}
		if r != nil && !slices.Contains(a.events, event) {
			continue
		}
		out = append(out, target{
			name: fmt.Sprintf("app:%d", a.id), url: a.webhookURL, secret: a.webhookSecret, contentType: "json",
			hookID: a.hookID, targetType: "integration", targetID: a.id, install: in,
		})
	}
	return out, nil
}

func (s *Server) sortedInstalls() []*installation {
	var out []*installation
	for _, in := range s.installs {
		out = append(out, in)
	}
	slices.SortFunc(out, func(x, y *installation) int { return int(x.id - y.id) })
	return out
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// send POSTs one delivery with GitHub's headers and records the outcome on the hook.
func (s *Server) send(ctx context.Context, tg target, event string, payload []byte) Delivery {
	d := Delivery{Target: tg.name, URL: tg.url, ID: newUUID()}
	body, ct := payload, "application/json"
	if tg.contentType == "form" {
		body, ct = []byte("payload="+url.QueryEscape(string(payload))), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tg.url, bytes.NewReader(body))
	if err != nil {
		d.Err = fmt.Errorf("build delivery: %w", err)
		return d
	}
	h := req.Header
	h.Set("Content-Type", ct)
	h.Set("User-Agent", "GitHub-Hookshot/"+randomHex(4)[:7])
	h.Set("X-GitHub-Event", event)
	h.Set("X-GitHub-Delivery", d.ID)
	h.Set("X-GitHub-Hook-ID", strconv.FormatInt(tg.hookID, 10))
	h.Set("X-GitHub-Hook-Installation-Target-Type", tg.targetType)
	h.Set("X-GitHub-Hook-Installation-Target-ID", strconv.FormatInt(tg.targetID, 10))
	h.Set("X-GitHub-Enterprise-Version", s.opts.Version)
	h.Set("X-GitHub-Enterprise-Host", strings.TrimPrefix(strings.TrimPrefix(s.URL, "http://"), "https://"))
	if tg.secret != "" {
		m := hmac.New(sha256.New, []byte(tg.secret))
		m.Write(body)
		h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
		m1 := hmac.New(sha1.New, []byte(tg.secret))
		m1.Write(body)
		h.Set("X-Hub-Signature", "sha1="+hex.EncodeToString(m1.Sum(nil)))
	}
	client := s.opts.DeliveryClient
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: tg.insecure} //nolint:gosec // the hook asked for it (insecure_ssl "1")
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	var last LastResponse
	if err != nil {
		d.Err = err
		last = LastResponse{Status: "failed", Message: "Failed to connect to host."}
	} else {
		resp.Body.Close()
		d.Status = resp.StatusCode
		code := resp.StatusCode
		last = LastResponse{Code: &code, Status: "active", Message: "OK"}
		if code < 200 || code > 299 {
			last.Status, last.Message = "misconfigured", fmt.Sprintf("Invalid HTTP Response: %d", code)
		}
	}
	if tg.hook != nil {
		s.mu.Lock()
		tg.hook.last = last
		s.mu.Unlock()
	}
	return d
}

// Commit is one commit of a push.
type Commit struct {
	ID          string // default: derived from the message
	Message     string
	AuthorName  string
	AuthorEmail string
	Timestamp   time.Time // default: the fake's clock
	Added       []string
	Removed     []string
	Modified    []string
}

// Push describes a push for DeliverPush.
type Push struct {
	Ref     string // refs/heads/main or refs/tags/v1
	Before  string // default: the branch's current head, or the zero sha for a new branch
	After   string // default: the last commit's id; the zero sha deletes the branch
	Commits []Commit
	Pusher  string // login; default the repository's owner
	Forced  bool
}

const zeroSHA = "0000000000000000000000000000000000000000"

// DeliverPush applies a push to the repository's branches and delivers the push event
// GitHub would send (ref, before, after, created, deleted, forced, compare, commits,
// head_commit, repository, pusher, sender; installation for App webhooks).
func (s *Server) DeliverPush(ctx context.Context, repoName string, p Push) ([]Delivery, error) {
	payload, err := s.pushPayload(repoName, p)
	if err != nil {
		return nil, err
	}
	return s.Deliver(ctx, repoName, "push", payload)
}

func (s *Server) pushPayload(repoName string, p Push) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.names[strings.ToLower(repoName)]
	if !ok {
		return nil, fmt.Errorf("no repository %s", repoName)
	}
	r := s.repos[id]
	if !strings.HasPrefix(p.Ref, "refs/") {
		return nil, fmt.Errorf("ref %q is not a full ref name", p.Ref)
	}
	branch, isBranch := strings.CutPrefix(p.Ref, "refs/heads/")
	if p.Before == "" {
		p.Before = zeroSHA
		if sha, ok := r.branches[branch]; ok && isBranch {
			p.Before = sha
		}
	}
	now := s.now()
	pusher := r.owner
	if p.Pusher != "" {
		pusher = s.accountLocked(p.Pusher, "User")
	}
	web := s.URL + "/" + r.fullName()
	commits := make([]map[string]any, 0, len(p.Commits))
	for i, c := range p.Commits {
		if c.ID == "" {
			c.ID = fakeSHA(r.fullName(), p.Ref, strconv.Itoa(i), c.Message, now.String())
		}
		if c.Timestamp.IsZero() {
			c.Timestamp = now
		}
		if c.AuthorName == "" {
			c.AuthorName, c.AuthorEmail = pusher.login, strings.ToLower(pusher.login)+"@users.noreply.example.com"
		}
		person := map[string]any{"name": c.AuthorName, "email": c.AuthorEmail, "username": pusher.login}
		commits = append(commits, map[string]any{
			"id": c.ID, "tree_id": fakeSHA("tree", c.ID), "distinct": true, "message": c.Message,
			"timestamp": c.Timestamp.Format(time.RFC3339), "url": web + "/commit/" + c.ID,
			"author": person, "committer": person,
			"added": nonNil(c.Added), "removed": nonNil(c.Removed), "modified": nonNil(c.Modified),
		})
		r.commits[c.ID] = true
	}
	if p.After == "" {
		if len(commits) > 0 {
			p.After = commits[len(commits)-1]["id"].(string)
		} else {
			p.After = fakeSHA(r.fullName(), p.Ref, now.String())
		}
	}
	var head any
	if len(commits) > 0 {
		head = commits[len(commits)-1]
	}
	created, deleted := p.Before == zeroSHA, p.After == zeroSHA
	if isBranch {
		if deleted {
			delete(r.branches, branch)
		} else {
			r.branches[branch] = p.After
			r.commits[p.After] = true
		}
	}
	r.pushedAt = now
	repoObj := s.repoJSON(r, nil, false)
	var repoMap map[string]any
	b, _ := json.Marshal(repoObj)
	_ = json.Unmarshal(b, &repoMap)
	// Push payloads describe the repository with epoch timestamps, the owner with name and
	// email, and the branch GitHub calls master_branch.
	repoMap["created_at"] = r.createdAt.Unix()
	repoMap["pushed_at"] = now.Unix()
	repoMap["master_branch"] = r.defaultBranch
	owner := repoMap["owner"].(map[string]any)
	owner["name"] = r.owner.login
	owner["email"] = strings.ToLower(r.owner.login) + "@users.noreply.example.com"
	compare := fmt.Sprintf("%s/compare/%s...%s", web, short(p.Before), short(p.After))
	if created {
		compare = web + "/commit/" + short(p.After)
	}
	payload := map[string]any{
		"ref": p.Ref, "before": p.Before, "after": p.After,
		"created": created, "deleted": deleted, "forced": p.Forced,
		"base_ref": nil, "compare": compare, "commits": commits, "head_commit": head,
		"repository": repoMap,
		"pusher":     map[string]any{"name": pusher.login, "email": strings.ToLower(pusher.login) + "@users.noreply.example.com"},
		"sender":     s.userJSON(pusher),
	}
	return json.Marshal(payload)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func short(sha string) string { return sha[:min(12, len(sha))] }
