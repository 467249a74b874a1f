package e2e

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var updateOpenAPI = flag.Bool("update-openapi", false, "rewrite api/openapi.json from the server")

// TestOpenAPIDocumentsEveryRoute checks that every route the server registers is in the
// OpenAPI document it serves, and that the copy kept in the repository is current.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	e := start(t, engines(t)[0])
	resp, err := http.Get(e.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(served, &doc); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi.json: %v %q", err, doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
			if op["summary"] == "" || op["responses"] == nil {
				t.Errorf("%s %s: no summary or responses", method, path)
			}
		}
	}
	// Every route the server registers (the API's table, the webhooks, operations).
	var registered []string
	for _, rt := range e.App.API.Routes() {
		registered = append(registered, rt.Method+" "+rt.Path)
	}
	for _, r := range registered {
		if !documented[r] {
			t.Errorf("route %s is not in the OpenAPI document", r)
		}
		// The route answers something other than the catch-all 404 for unknown endpoints.
		method, path, _ := strings.Cut(r, " ")
		path = regexp.MustCompile(`\{[a-z_]+\}`).ReplaceAllString(path, "x")
		req, _ := http.NewRequest(method, e.URL+path, nil)
		resp, err := e.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(raw, []byte("No such endpoint")) {
			t.Errorf("route %s is documented but not served", r)
		}
	}
	for r := range documented {
		found := false
		for _, x := range registered {
			found = found || x == r
		}
		if !found {
			t.Errorf("the document lists %s, which the server does not register", r)
		}
	}
	kept := filepath.Join("..", "..", "api", "openapi.json")
	if *updateOpenAPI {
		if err := os.WriteFile(kept, served, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	onDisk, err := os.ReadFile(kept)
	if err != nil || !bytes.Equal(onDisk, served) {
		t.Fatalf("api/openapi.json is not the document the server serves; regenerate it with: go test ./internal/e2e -run TestOpenAPIDocumentsEveryRoute -update-openapi")
	}
}
