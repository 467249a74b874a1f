package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/ingest"
	"github.com/forgeway/forgeway/internal/problem"
)

// schemaTypes names the Go types the OpenAPI document describes; schemas are derived from
// them by reflection, so the document cannot drift from the code.
func schemaTypes() map[string]reflect.Type {
	t := func(v any) reflect.Type { return reflect.TypeOf(v) }
	return map[string]reflect.Type{
		"Integration": t(Integration{}), "IntegrationList": t(List[Integration]{}),
		"IntegrationCreate": t(IntegrationCreate{}), "IntegrationPatch": t(IntegrationPatch{}),
		"Diagnosis": t(Diagnosis{}), "Repository": t(Repository{}), "RepositoryList": t(List[Repository]{}),
		"Delivery": t(Delivery{}), "DeliveryList": t(List[Delivery]{}), "Job": t(Job{}), "JobList": t(List[Job]{}),
		"EventList": t(List[json.RawMessage]{}), "Ref": t(forge.Ref{}), "RefList": t(List[forge.Ref]{}),
		"PullRequest": t(forge.PullRequest{}), "BranchCreate": t(BranchCreate{}), "PullCreate": t(PullCreate{}),
		"PushRequest": t(PushRequest{}), "CredentialPut": t(CredentialPut{}), "Credential": t(Credential{}),
		"Token": t(Token{}), "TokenList": t(List[Token]{}), "TokenCreate": t(TokenCreate{}),
		"Project": t(Project{}), "ProjectList": t(List[Project]{}), "AppFlow": t(AppFlow{}),
		"Kind": t(Kind{}), "KindList": t(List[Kind]{}), "Problem": t(problem.Details{}),
		"Accepted": t(ingest.Accepted{}), "Subscription": t(Subscription{}), "SubscriptionList": t(List[Subscription]{}),
		"SubscriptionCreate": t(SubscriptionCreate{}), "SubscriptionPatch": t(SubscriptionPatch{}),
		"SubscriptionAttempt": t(SubscriptionAttempt{}), "SubscriptionAttemptList": t(List[SubscriptionAttempt]{}),
	}
}

var timeType = reflect.TypeOf(time.Time{})
var rawType = reflect.TypeOf(json.RawMessage{})

func schemaOf(t reflect.Type) map[string]any {
	if t == timeType {
		return map[string]any{"type": "string", "format": "date-time"}
	}
	if t == rawType {
		return map[string]any{} // any JSON value
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := schemaOf(t.Elem())
		if typ, ok := s["type"].(string); ok {
			s["type"] = []any{typ, "null"}
		}
		return s
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		props := map[string]any{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			props[name] = schemaOf(f.Type)
		}
		return map[string]any{"type": "object", "properties": props}
	}
	return map[string]any{}
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// OpenAPI returns the API's OpenAPI 3.1 document.
func (s *Server) OpenAPI() map[string]any {
	paths := map[string]map[string]any{}
	for _, rt := range s.routes {
		op := map[string]any{
			"summary":     rt.Summary,
			"tags":        []string{rt.Tag},
			"operationId": operationID(rt),
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range rt.Query {
			params = append(params, map[string]any{"name": q, "in": "query", "required": false, "schema": map[string]any{"type": "string"}})
		}
		if rt.Method != http.MethodGet {
			params = append(params, map[string]any{"name": "Idempotency-Key", "in": "header", "required": false, "schema": map[string]any{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.Request != "" {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": ref(rt.Request)}}}
		}
		ok := map[string]any{"description": http.StatusText(rt.Status)}
		switch {
		case rt.Response != "":
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": ref(rt.Response)}}
		case strings.HasSuffix(rt.Path, "/stream"):
			ok["content"] = map[string]any{"text/event-stream": map[string]any{"schema": map[string]any{"type": "string"}}}
		case rt.Path == "/metrics" || rt.Path == "/healthz" || rt.Path == "/readyz":
			ok["content"] = map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}
		case strings.HasSuffix(rt.Path, "/body"):
			ok["content"] = map[string]any{"application/octet-stream": map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}
		case strings.HasPrefix(rt.Path, "/callback"):
			ok["content"] = map[string]any{"text/html": map[string]any{"schema": map[string]any{"type": "string"}}}
		}
		problemResp := map[string]any{"description": "Problem (RFC 9457)", "content": map[string]any{"application/problem+json": map[string]any{"schema": ref("Problem")}}}
		op["responses"] = map[string]any{itoa(rt.Status): ok, "default": problemResp}
		if rt.Access != public {
			op["security"] = []any{map[string]any{"bearer": []any{}}}
		}
		if paths[rt.Path] == nil {
			paths[rt.Path] = map[string]any{}
		}
		paths[rt.Path][strings.ToLower(rt.Method)] = op
	}
	schemas := map[string]any{}
	for name, t := range schemaTypes() {
		schemas[name] = schemaOf(t)
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "Forgeway API",
			"version":     s.version,
			"description": "Connect Git hosts, discover and attach repositories, receive their webhooks as one normalized event stream, and act on them.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas":         schemas,
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
		},
	}
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func itoa(n int) string { return strconv.Itoa(n) }

func operationID(rt Route) string {
	parts := []string{strings.ToLower(rt.Method)}
	for _, seg := range strings.Split(strings.TrimPrefix(rt.Path, Prefix), "/") {
		if seg == "" {
			continue
		}
		seg = strings.Trim(seg, "{}")
		seg = strings.ReplaceAll(seg, ".", "_")
		parts = append(parts, seg)
	}
	return strings.Join(parts, "_")
}

// OpenAPIJSON is the document as served and as kept in the repository (api/openapi.json).
func (s *Server) OpenAPIJSON() []byte {
	raw, _ := json.MarshalIndent(s.OpenAPI(), "", "  ")
	return append(raw, '\n')
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.OpenAPIJSON())
}
