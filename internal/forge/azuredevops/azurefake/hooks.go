package azurefake

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// masked is how Azure DevOps shows a confidential consumer input.
const masked = "********"

// publishedEvents are the event types the fake publishes to service hooks.
var publishedEvents = map[string]string{
	"git.push":                "Code pushed",
	"git.pullrequest.created": "Pull request created",
	"git.pullrequest.updated": "Pull request updated",
	"git.pullrequest.merged":  "Pull request merge attempted",
}

// notificationTypes are the valid notificationType inputs of git.pullrequest.updated.
var notificationTypes = map[string]bool{"": true, "PushNotification": true, "ReviewersUpdateNotification": true,
	"StatusUpdateNotification": true, "ReviewerVoteNotification": true}

// Validation of the Web Hooks consumer's inputs, as its consumer description states them.
var (
	nonSpaceRE    = regexp.MustCompile(`^[\S]+$`)
	httpHeadersRE = regexp.MustCompile(`^([\S]+[\s]*:[\s]*[\S]+[\s]*[\r\n\f]+)*?([\S]+[\s]*:[\s]*[\S]+)+$`)
	detailValues  = map[string]bool{"": true, "minimal": true, "none": true}
	messageValues = map[string]bool{"": true, "text": true, "html": true, "markdown": true, "none": true}
)

type subJSON struct {
	ID                     string            `json:"id"`
	URL                    string            `json:"url"`
	Status                 string            `json:"status"`
	PublisherID            string            `json:"publisherId"`
	EventType              string            `json:"eventType"`
	ResourceVersion        string            `json:"resourceVersion"`
	EventDescription       string            `json:"eventDescription"`
	ConsumerID             string            `json:"consumerId"`
	ConsumerActionID       string            `json:"consumerActionId"`
	ActionDescription      string            `json:"actionDescription"`
	CreatedBy              *identityJSON     `json:"createdBy"`
	CreatedDate            string            `json:"createdDate"`
	ModifiedBy             *identityJSON     `json:"modifiedBy"`
	ModifiedDate           string            `json:"modifiedDate"`
	LastProbationRetryDate string            `json:"lastProbationRetryDate,omitempty"`
	PublisherInputs        map[string]string `json:"publisherInputs"`
	ConsumerInputs         map[string]string `json:"consumerInputs"`
}

func (s *Server) subJSON(x *sub) subJSON {
	con := map[string]string{}
	for k, v := range x.consumerInputs {
		con[k] = v
	}
	if _, ok := con["basicAuthPassword"]; ok {
		con["basicAuthPassword"] = masked
	}
	pub := map[string]string{}
	for k, v := range x.publisherInputs {
		pub[k] = v
	}
	out := subJSON{
		ID: x.id, URL: s.BaseURL + "/_apis/hooks/subscriptions/" + x.id, Status: x.status, PublisherID: "tfs",
		EventType: x.eventType, ResourceVersion: x.resourceVersion, EventDescription: s.eventDescription(x),
		ConsumerID: "webHooks", ConsumerActionID: "httpRequest", ActionDescription: "To host " + hostOf(con["url"]),
		CreatedBy: s.identityJSON(x.createdBy), CreatedDate: ts(x.created), ModifiedBy: s.identityJSON(x.modifiedBy),
		ModifiedDate: ts(x.modified), PublisherInputs: pub, ConsumerInputs: con,
	}
	if x.status == "onProbation" && !x.probation.IsZero() {
		out.LastProbationRetryDate = ts(x.probation)
	}
	return out
}

func (s *Server) eventDescription(x *sub) string {
	d := "Any repository"
	if id := x.publisherInputs["repository"]; id != "" {
		if r := s.repos[strings.ToLower(id)]; r != nil {
			d = "Repository " + r.name
		}
	}
	return d
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Host
}

// subIn is a Subscription as a client sends it.
type subIn struct {
	PublisherID      string            `json:"publisherId"`
	EventType        string            `json:"eventType"`
	ResourceVersion  string            `json:"resourceVersion"`
	ConsumerID       string            `json:"consumerId"`
	ConsumerActionID string            `json:"consumerActionId"`
	PublisherInputs  map[string]string `json:"publisherInputs"`
	ConsumerInputs   map[string]string `json:"consumerInputs"`
	Status           string            `json:"status"`
}

// validate checks a subscription as the service does: the publisher, event, consumer and
// action exist; the project and repository filters name existing ones; every input is valid.
func (s *Server) validate(in subIn) *reply {
	bad := func(format string, args ...any) *reply {
		r := errReply(http.StatusBadRequest, "ServiceHookException", fmt.Sprintf(format, args...))
		return &r
	}
	switch {
	case in.PublisherID != "tfs":
		return bad("The publisher %q does not exist or is not supported.", in.PublisherID)
	case publishedEvents[in.EventType] == "":
		return bad("The event type %q is not supported by publisher tfs (in this fake).", in.EventType)
	case in.ConsumerID != "webHooks" || in.ConsumerActionID != "httpRequest":
		return bad("The consumer action %s/%s does not exist (the fake serves webHooks/httpRequest).", in.ConsumerID, in.ConsumerActionID)
	}
	pid := in.PublisherInputs["projectId"]
	p := s.projectOf(pid)
	if pid == "" || p == nil || !strings.EqualFold(p.id, pid) {
		return bad("The publisher input projectId must be the id of an existing project, not %q.", pid)
	}
	if rid := in.PublisherInputs["repository"]; rid != "" {
		if r := s.repos[strings.ToLower(rid)]; r == nil || r.project != p {
			return bad("The publisher input repository %q is not a repository of project %s.", rid, p.name)
		}
	}
	if nt := in.PublisherInputs["notificationType"]; !notificationTypes[nt] || (nt != "" && in.EventType != "git.pullrequest.updated") {
		return bad("The publisher input notificationType %q is invalid for %s.", nt, in.EventType)
	}
	ci := in.ConsumerInputs
	u, err := url.Parse(ci["url"])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("The consumer input url %q must be an absolute http or https URL.", ci["url"])
	}
	for _, k := range []string{"basicAuthUsername", "basicAuthPassword"} {
		if v, ok := ci[k]; ok && v != "" && (!nonSpaceRE.MatchString(v) || len(v) > 256) {
			return bad("The consumer input %s must be 1 to 256 characters without spaces.", k)
		}
	}
	if h := ci["httpHeaders"]; h != "" && !httpHeadersRE.MatchString(h) {
		return bad("The consumer input httpHeaders must be Key:value lines.")
	}
	switch {
	case !detailValues[ci["resourceDetailsToSend"]]:
		return bad("The consumer input resourceDetailsToSend %q is not one of All, minimal, none.", ci["resourceDetailsToSend"])
	case !messageValues[ci["messagesToSend"]] || !messageValues[ci["detailedMessagesToSend"]]:
		return bad("The consumer inputs messagesToSend and detailedMessagesToSend take All, text, html, markdown or none.")
	}
	if v, ok := ci["acceptUntrustedCerts"]; ok && v != "true" && v != "false" {
		return bad("The consumer input acceptUntrustedCerts must be true or false.")
	}
	switch in.Status {
	case "", "enabled", "onProbation", "disabledByUser", "disabledBySystem", "disabledByInactiveIdentity":
	default:
		return bad("The subscription status %q is invalid.", in.Status)
	}
	return nil
}

func (s *Server) requireEdit(c *call) *reply {
	if c.who.editSubscriptions {
		return nil
	}
	rep := errReply(http.StatusForbidden, "AccessCheckException",
		"Access Denied: "+c.who.displayName+" needs the following permission(s) on the resource ServiceHooks to perform this action: Edit subscriptions")
	return &rep
}

func copyInputs(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// createSubscription answers POST _apis/hooks/subscriptions: the subscription, enabled.
func (s *Server) createSubscription(c *call) reply {
	var in subIn
	if rep := c.decode(&in); rep != nil {
		return *rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rep := s.requireEdit(c); rep != nil {
		return *rep
	}
	if rep := s.validate(in); rep != nil {
		return *rep
	}
	now := s.now().UTC()
	x := &sub{id: newGUID(), eventType: in.EventType, resourceVersion: firstNonEmpty(in.ResourceVersion, "1.0"),
		publisherInputs: copyInputs(in.PublisherInputs), consumerInputs: copyInputs(in.ConsumerInputs),
		status: firstNonEmpty(in.Status, "enabled"), createdBy: c.who, modifiedBy: c.who, created: now, modified: now}
	// Azure DevOps links a tfs subscription to its own notification subscription.
	x.publisherInputs["tfsSubscriptionId"] = newGUID()
	s.subs[x.id] = x
	s.subOrder = append(s.subOrder, x.id)
	return jsonReply(http.StatusOK, s.subJSON(x))
}

func (s *Server) subFor(c *call) (*sub, *reply) {
	x := s.subs[strings.ToLower(c.r.PathValue("subscriptionId"))]
	if x == nil {
		rep := errReply(http.StatusNotFound, "SubscriptionNotFoundException",
			"Subscription "+c.r.PathValue("subscriptionId")+" could not be found.")
		return nil, &rep
	}
	return x, nil
}

func (s *Server) getSubscription(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, rep := s.subFor(c)
	if rep != nil {
		return *rep
	}
	return jsonReply(http.StatusOK, s.subJSON(x))
}

// replaceSubscription answers PUT …/subscriptions/{id}: the inputs and status replaced; a
// masked password keeps the stored one; enabling clears the failure count.
func (s *Server) replaceSubscription(c *call) reply {
	var in subIn
	if rep := c.decode(&in); rep != nil {
		return *rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	x, rep := s.subFor(c)
	if rep != nil {
		return *rep
	}
	if rep := s.requireEdit(c); rep != nil {
		return *rep
	}
	if rep := s.validate(in); rep != nil {
		return *rep
	}
	con := copyInputs(in.ConsumerInputs)
	if con["basicAuthPassword"] == masked {
		con["basicAuthPassword"] = x.consumerInputs["basicAuthPassword"]
	}
	tfsID := x.publisherInputs["tfsSubscriptionId"]
	x.eventType, x.resourceVersion = in.EventType, firstNonEmpty(in.ResourceVersion, x.resourceVersion)
	x.publisherInputs, x.consumerInputs = copyInputs(in.PublisherInputs), con
	x.publisherInputs["tfsSubscriptionId"] = tfsID
	if in.Status != "" {
		x.status = in.Status
	}
	if x.status == "enabled" {
		x.failures = 0
	}
	x.modifiedBy, x.modified = c.who, s.now().UTC()
	return jsonReply(http.StatusOK, s.subJSON(x))
}

func (s *Server) deleteSubscription(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, rep := s.subFor(c)
	if rep != nil {
		return *rep
	}
	if rep := s.requireEdit(c); rep != nil {
		return *rep
	}
	s.removeSubLocked(x.id)
	return reply{status: http.StatusOK} // the description declares 200, without a body
}

// matches applies the exact filters of a listing or query (empty: any).
func matches(x *sub, publisherID, eventType, consumerID, actionID string) bool {
	eq := func(filter, v string) bool { return filter == "" || strings.EqualFold(filter, v) }
	return eq(publisherID, "tfs") && eq(eventType, x.eventType) && eq(consumerID, "webHooks") && eq(actionID, "httpRequest")
}

// listSubscriptions answers GET _apis/hooks/subscriptions with its filters, in one page.
func (s *Server) listSubscriptions(c *call) reply {
	q := c.r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []subJSON{}
	for _, id := range s.subOrder {
		x := s.subs[id]
		if matches(x, q.Get("publisherId"), q.Get("eventType"), q.Get("consumerId"), q.Get("consumerActionId")) {
			out = append(out, s.subJSON(x))
		}
	}
	return listReply(out, len(out))
}

// inputFilter is an InputFilter: it matches when all its conditions do.
type inputFilter struct {
	Conditions []struct {
		InputID       string `json:"inputId"`
		Operator      string `json:"operator"`
		InputValue    string `json:"inputValue"`
		CaseSensitive bool   `json:"caseSensitive"`
	} `json:"conditions"`
}

// anyFilter reports whether inputs match any of filters (no filter matches everything).
func anyFilter(filters []inputFilter, inputs map[string]string) bool {
	if len(filters) == 0 {
		return true
	}
	for _, f := range filters {
		all := true
		for _, cond := range f.Conditions {
			have := inputs[cond.InputID]
			eq := have == cond.InputValue || (!cond.CaseSensitive && strings.EqualFold(have, cond.InputValue))
			if (cond.Operator == "notEquals") == eq {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// querySubscriptions answers POST _apis/hooks/subscriptionsquery: the query, with the
// subscriptions matching its exact filters and any of its publisher and consumer input
// filters as results.
func (s *Server) querySubscriptions(c *call) reply {
	var q struct {
		PublisherID           string        `json:"publisherId"`
		EventType             string        `json:"eventType"`
		ConsumerID            string        `json:"consumerId"`
		ConsumerActionID      string        `json:"consumerActionId"`
		PublisherInputFilters []inputFilter `json:"publisherInputFilters"`
		ConsumerInputFilters  []inputFilter `json:"consumerInputFilters"`
		SubscriberID          string        `json:"subscriberId"`
	}
	if rep := c.decode(&q); rep != nil {
		return *rep
	}
	var echo map[string]any
	_ = json.Unmarshal(c.body, &echo)
	s.mu.Lock()
	defer s.mu.Unlock()
	results := []subJSON{}
	for _, id := range s.subOrder {
		x := s.subs[id]
		if matches(x, q.PublisherID, q.EventType, q.ConsumerID, q.ConsumerActionID) &&
			anyFilter(q.PublisherInputFilters, x.publisherInputs) && anyFilter(q.ConsumerInputFilters, x.consumerInputs) &&
			(q.SubscriberID == "" || strings.EqualFold(q.SubscriberID, x.createdBy.id)) {
			results = append(results, s.subJSON(x))
		}
	}
	echo["results"] = results
	return jsonReply(http.StatusOK, echo)
}

// Delivery is the outcome of one service hook delivery the fake made.
type Delivery struct {
	SubscriptionID string
	EventType      string
	// EventID is the body's id; NotificationID the subscription's counter.
	EventID        string
	NotificationID int64
	URL            string
	// Status is the receiver's HTTP status; 0 when it could not be reached (Err says why).
	Status int
	Err    error
	// Body is what was posted.
	Body []byte
}

// Deliveries lists the deliveries made so far, in order.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.deliveries...)
}

// event is one event to publish: its resource and what subscriptions filter on.
type event struct {
	eventType        string
	repo             *repo
	refs             []string // pushed refs, or a pull request's target
	notificationType string   // for git.pullrequest.updated
	resource         map[string]any
	minimal          map[string]any
	message          string
	created          time.Time
}

// targets returns the subscriptions an event goes to: enabled or on probation, of its type,
// whose project, repository, branch and notification type filters match.
func (s *Server) targetsLocked(ev event) []*sub {
	var out []*sub
	for _, id := range s.subOrder {
		x := s.subs[id]
		if x.eventType != ev.eventType || (x.status != "enabled" && x.status != "onProbation") {
			continue
		}
		in := x.publisherInputs
		if pid := in["projectId"]; pid != "" && !strings.EqualFold(pid, ev.repo.project.id) {
			continue
		}
		if rid := in["repository"]; rid != "" && !strings.EqualFold(rid, ev.repo.id) {
			continue
		}
		if b := in["branch"]; b != "" {
			hit := false
			for _, r := range ev.refs {
				if r == b || r == "refs/heads/"+b {
					hit = true
				}
			}
			if !hit {
				continue
			}
		}
		if nt := in["notificationType"]; nt != "" && nt != ev.notificationType {
			continue
		}
		out = append(out, x)
	}
	return out
}

// publish posts ev to each subscription it matches, as the Web Hooks consumer does.
func (s *Server) publish(ctx context.Context, ev event) []Delivery {
	eventID := newGUID()
	s.mu.Lock()
	targets := s.targetsLocked(ev)
	type job struct {
		x    *sub
		body []byte
		url  string
		ci   map[string]string
		n    int64
	}
	var jobs []job
	for _, x := range targets {
		x.notifications++
		body := s.notificationBody(x, eventID, x.notifications, ev)
		jobs = append(jobs, job{x: x, body: body, url: x.consumerInputs["url"], ci: copyInputs(x.consumerInputs), n: x.notifications})
	}
	s.mu.Unlock()
	var out []Delivery
	for _, j := range jobs {
		d := s.post(ctx, j.url, j.ci, j.body)
		d.SubscriptionID, d.EventType, d.EventID, d.NotificationID = j.x.id, ev.eventType, eventID, j.n
		s.mu.Lock()
		if d.Err == nil && d.Status >= 200 && d.Status < 300 {
			j.x.failures = 0
			if j.x.status == "onProbation" {
				j.x.status = "enabled"
			}
		} else {
			j.x.failures++
			j.x.status, j.x.probation = "onProbation", s.now().UTC()
			if j.x.failures >= 3 {
				j.x.status = "disabledBySystem"
			}
		}
		s.deliveries = append(s.deliveries, d)
		s.mu.Unlock()
		out = append(out, d)
	}
	return out
}

// notificationBody is the JSON a subscription receives, shaped by its resource and message
// choices.
func (s *Server) notificationBody(x *sub, eventID string, n int64, ev event) []byte {
	ci := x.consumerInputs
	body := map[string]any{
		"subscriptionId": x.id, "notificationId": n, "id": eventID, "eventType": ev.eventType, "publisherId": "tfs",
		"resourceVersion": x.resourceVersion,
		"resourceContainers": map[string]any{
			"collection": map[string]any{"id": s.collection, "baseUrl": s.BaseURL + "/"},
			"account":    map[string]any{"id": s.collection, "baseUrl": s.BaseURL + "/"},
			"project":    map[string]any{"id": ev.repo.project.id, "baseUrl": s.BaseURL + "/"},
		},
		"createdDate": ev.created.UTC().Format("2006-01-02T15:04:05.9999999Z"),
	}
	switch ci["resourceDetailsToSend"] {
	case "none":
		body["resource"] = nil
	case "minimal":
		body["resource"] = ev.minimal
	default:
		body["resource"] = ev.resource
	}
	msg := func(choice string) any {
		all := map[string]any{"text": ev.message, "html": ev.message, "markdown": ev.message}
		switch choice {
		case "none":
			return nil
		case "":
			return all
		}
		return map[string]any{choice: ev.message}
	}
	if m := msg(ci["messagesToSend"]); m != nil {
		body["message"] = m
	}
	if m := msg(ci["detailedMessagesToSend"]); m != nil {
		body["detailedMessage"] = m
	}
	b, err := json.Marshal(body)
	if err != nil {
		s.t.Errorf("azurefake: encode a notification: %v", err)
	}
	return b
}

// post sends one delivery with the subscription's credentials and headers.
func (s *Server) post(ctx context.Context, target string, ci map[string]string, body []byte) Delivery {
	d := Delivery{URL: target, Body: body}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		d.Err = fmt.Errorf("build delivery: %w", err)
		return d
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "VSServices/19.0 (ServiceHooks)")
	if ci["basicAuthUsername"] != "" || ci["basicAuthPassword"] != "" {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(ci["basicAuthUsername"]+":"+ci["basicAuthPassword"])))
	}
	for _, line := range strings.FieldsFunc(ci["httpHeaders"], func(r rune) bool { return r == '\r' || r == '\n' || r == '\f' }) {
		if k, v, ok := strings.Cut(line, ":"); ok {
			req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	client := s.opts.DeliveryClient
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: ci["acceptUntrustedCerts"] == "true"} //nolint:gosec // the subscription asked for it
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr, Timeout: 20 * time.Second}
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

// identityResource is an IdentityRef inside a delivery.
func (s *Server) identityResource(u *user) map[string]any {
	if u == nil {
		return nil
	}
	return map[string]any{"displayName": u.displayName, "url": s.BaseURL + "/_apis/Identities/" + u.id, "id": u.id,
		"uniqueName": u.uniqueName, "imageUrl": s.BaseURL + "/_api/_common/identityImage?id=" + u.id, "descriptor": u.descriptor}
}

// repoResource is a repository inside a delivery.
func (s *Server) repoResource(r *repo) map[string]any {
	out := map[string]any{
		"id": r.id, "name": r.name, "url": s.BaseURL + "/_apis/git/repositories/" + r.id,
		"project": map[string]any{"id": r.project.id, "name": r.project.name, "url": s.BaseURL + "/_apis/projects/" + r.project.id,
			"state": "wellFormed", "visibility": r.project.visibility},
		"remoteUrl": s.remoteURL(r),
	}
	if r.defaultBranch != "" {
		out["defaultBranch"] = r.defaultBranch
	}
	return out
}

// deliverPush publishes git.push for a push of refs to the repository (id) by who, listing
// commits, then git.pullrequest.updated for each active pull request whose source moved.
func (s *Server) deliverPush(ctx context.Context, repoID string, who *user, refs []pushedRef, commits []commitInfo) []Delivery {
	s.mu.Lock()
	r := s.repos[repoID]
	if r == nil {
		s.mu.Unlock()
		return nil
	}
	s.pushes++
	now := s.now().UTC()
	var cs []map[string]any
	for _, c := range commits {
		cs = append(cs, map[string]any{
			"commitId":  c.id,
			"author":    map[string]any{"name": c.authorName, "email": c.authorEmail, "date": c.authorDate},
			"committer": map[string]any{"name": c.committerName, "email": c.committerEmail, "date": c.committerDate},
			"comment":   c.message,
			"url":       s.BaseURL + "/_apis/git/repositories/" + r.id + "/commits/" + c.id,
		})
	}
	var ups []map[string]any
	var names []string
	for _, u := range refs {
		ups = append(ups, map[string]any{"name": u.name, "oldObjectId": u.old, "newObjectId": u.new})
		names = append(names, u.name)
	}
	pushURL := s.BaseURL + "/_apis/git/repositories/" + r.id + "/pushes/" + strconv.FormatInt(s.pushes, 10)
	res := map[string]any{
		"refUpdates": ups, "repository": s.repoResource(r), "pushedBy": s.identityResource(who),
		"pushId": s.pushes, "date": now.Format("2006-01-02T15:04:05.9999999Z"), "url": pushURL,
	}
	if len(cs) > 0 {
		res["commits"] = cs
	}
	name := "someone"
	if who != nil {
		name = who.displayName
	}
	ev := event{eventType: "git.push", repo: r, refs: names, resource: res, created: now,
		minimal: map[string]any{"pushId": s.pushes, "url": pushURL},
		message: fmt.Sprintf("%s pushed updates to %s:%s", name, r.name, strings.Join(names, ", "))}
	var moved []int64
	for _, u := range refs {
		for _, p := range s.sortedPulls() {
			if p.repo == r && p.status == "active" && p.source == u.name && u.new != zeroSHA {
				p.sourceSHA = u.new
				moved = append(moved, p.id)
			}
		}
	}
	s.mu.Unlock()
	out := s.publish(ctx, ev)
	for _, id := range moved {
		out = append(out, s.deliverPull(ctx, id, "git.pullrequest.updated", "PushNotification")...)
	}
	return out
}

// deliverPull publishes a pull request event.
func (s *Server) deliverPull(ctx context.Context, id int64, eventType, notificationType string) []Delivery {
	s.mu.Lock()
	p := s.pulls[id]
	if p == nil {
		s.mu.Unlock()
		return nil
	}
	var res map[string]any
	b, _ := json.Marshal(s.pullJSON(p))
	_ = json.Unmarshal(b, &res)
	res["repository"] = s.repoResource(p.repo)
	res["_links"] = map[string]any{"web": map[string]any{"href": s.webURL(p.repo) + "/pullrequest/" + strconv.FormatInt(p.id, 10)}}
	verb := map[string]string{"git.pullrequest.created": "created", "git.pullrequest.merged": "merge attempted for",
		"git.pullrequest.updated": "updated"}[eventType]
	ev := event{eventType: eventType, repo: p.repo, refs: []string{p.target}, notificationType: notificationType,
		resource: res, minimal: map[string]any{"pullRequestId": p.id, "url": res["url"]}, created: s.now().UTC(),
		message: fmt.Sprintf("%s %s pull request %d (%s)", p.createdBy.displayName, verb, p.id, p.title)}
	s.mu.Unlock()
	return s.publish(ctx, ev)
}

// CompletePullRequest completes (merges) a pull request, as its author does in the web UI:
// status completed with a merge commit, delivered as git.pullrequest.merged (the merge) and
// git.pullrequest.updated (StatusUpdateNotification). The fake does not merge git data.
func (s *Server) CompletePullRequest(ctx context.Context, fullName string, id int64) []Delivery {
	s.mu.Lock()
	p := s.pulls[id]
	if p == nil || p.repo != s.mustRepo(fullName) {
		s.mu.Unlock()
		s.t.Fatalf("azurefake: no pull request %d in %s", id, fullName)
		return nil
	}
	p.status, p.closedBy, p.closed = "completed", p.createdBy, s.now().UTC()
	p.mergeSHA = fakeSHA("merge", p.sourceSHA, p.targetSHA)
	s.mu.Unlock()
	out := s.deliverPull(ctx, id, "git.pullrequest.merged", "")
	return append(out, s.deliverPull(ctx, id, "git.pullrequest.updated", "StatusUpdateNotification")...)
}

// AbandonPullRequest abandons a pull request, delivered as git.pullrequest.updated
// (StatusUpdateNotification).
func (s *Server) AbandonPullRequest(ctx context.Context, fullName string, id int64) []Delivery {
	s.mu.Lock()
	p := s.pulls[id]
	if p == nil || p.repo != s.mustRepo(fullName) {
		s.mu.Unlock()
		s.t.Fatalf("azurefake: no pull request %d in %s", id, fullName)
		return nil
	}
	p.status, p.closedBy, p.closed = "abandoned", p.createdBy, s.now().UTC()
	s.mu.Unlock()
	return s.deliverPull(ctx, id, "git.pullrequest.updated", "StatusUpdateNotification")
}

// The sample notifications of the "Test" button, as Azure DevOps' events reference shows
// them: a fixed event id and Microsoft's sample repositories.
var samples = map[string]struct{ id, repoID, repoName, project string }{
	"git.push":                {"03c164c2-8912-4d5e-8009-3707d5f83734", "278d5cd2-584d-4b63-824a-2ba458937249", "Fabrikam-Fiber-Git", "Fabrikam-Fiber-Git"},
	"git.pullrequest.created": {"2ab4e3d3-b7a6-425e-92b1-5a9982c1269e", "4bc14d40-c903-45e2-872e-0462c7748079", "Fabrikam", "Fabrikam"},
	"git.pullrequest.updated": {"af07be1b-f3ad-44c8-a7f1-c4835f2df06b", "4bc14d40-c903-45e2-872e-0462c7748079", "Fabrikam", "Fabrikam"},
	"git.pullrequest.merged":  {"6872ee8c-b333-4eff-bfb9-0d5274943566", "4bc14d40-c903-45e2-872e-0462c7748079", "Fabrikam", "Fabrikam"},
}

// SendTestNotification sends a subscription the sample notification of its event type, as
// its "Test" button does: Microsoft's sample data (fixed event id, sample repository), the
// subscription's id and next notification id. The subscription's status is left as it is.
func (s *Server) SendTestNotification(ctx context.Context, subscriptionID string) Delivery {
	s.mu.Lock()
	x := s.subs[strings.ToLower(subscriptionID)]
	if x == nil {
		s.mu.Unlock()
		s.t.Fatalf("azurefake: no subscription %s", subscriptionID)
		return Delivery{}
	}
	smp := samples[x.eventType]
	x.notifications++
	repo := map[string]any{"id": smp.repoID, "name": smp.repoName,
		"project":   map[string]any{"id": "6ce954b1-ce1f-45d1-b94d-e6bf2464ba2c", "name": smp.project, "state": "wellFormed"},
		"remoteUrl": "https://dev.azure.com/fabrikam/DefaultCollection/_git/" + smp.repoName, "defaultBranch": "refs/heads/master"}
	res := map[string]any{"repository": repo}
	if x.eventType == "git.push" {
		res["refUpdates"] = []map[string]any{{"name": "refs/heads/master", "oldObjectId": "aad331d8d3b131fa9ae03cf5e53965b51942618a",
			"newObjectId": "33b55f7cb7e7e245323987634f960cf4a6e6bc74"}}
		res["pushId"] = 14
	} else {
		res["pullRequestId"] = 1
		res["status"] = "active"
		res["title"] = "my first pull request"
		res["sourceRefName"], res["targetRefName"] = "refs/heads/mytopic", "refs/heads/master"
	}
	body, _ := json.Marshal(map[string]any{
		"subscriptionId": x.id, "notificationId": x.notifications, "id": smp.id, "eventType": x.eventType,
		"publisherId": "tfs", "resource": res, "resourceVersion": "1.0", "createdDate": s.now().UTC().Format(time.RFC3339Nano),
	})
	ci := copyInputs(x.consumerInputs)
	n := x.notifications
	s.mu.Unlock()
	d := s.post(ctx, ci["url"], ci, body)
	d.SubscriptionID, d.EventType, d.EventID, d.NotificationID = x.id, x.eventType, smp.id, n
	s.mu.Lock()
	s.deliveries = append(s.deliveries, d)
	s.mu.Unlock()
	return d
}
