// Package sample builds deliveries as each host sends them — its event header, its delivery
// id header, its signature or credentials — for the end-to-end tests and the load tool. It
// knows the corpus's file naming (corpus/SOURCES.md) to name each file's event.
package sample

import (
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/azuredevops/adowebhook"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc/bbwebhook"
	"github.com/forgeway/forgeway/internal/forge/gitea/giteawebhook"
	"github.com/forgeway/forgeway/internal/forge/github/ghwebhook"
	"github.com/forgeway/forgeway/internal/forge/gitlab/glwebhook"
)

// Headers returns the headers kind sends with body for event, authenticated with secret (the
// integration's webhook secret); id is the delivery id where the host sends one in a header
// (Azure DevOps carries its in the body).
func Headers(kind forge.Kind, event, id, secret string, body []byte) (http.Header, error) {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	switch kind {
	case forge.GitHub:
		h.Set("User-Agent", "GitHub-Hookshot/044aadd")
		h.Set(ghwebhook.HeaderEvent, event)
		h.Set(ghwebhook.HeaderDelivery, id)
		h.Set(ghwebhook.HeaderSignature, ghwebhook.Sign(secret, body))
	case forge.GitLab:
		h.Set("User-Agent", "GitLab/17.6.0")
		h.Set(glwebhook.HeaderEvent, event)
		h.Set(glwebhook.HeaderEventUUID, id)
		h.Set(glwebhook.HeaderToken, secret)
	case forge.BitbucketDC:
		h.Set("User-Agent", "Atlassian HttpClient 4.2.0")
		h.Set(bbwebhook.HeaderEvent, event)
		h.Set(bbwebhook.HeaderRequestID, id)
		h.Set(bbwebhook.HeaderSignature, bbwebhook.Sign(secret, body))
	case forge.AzureDevOps:
		h.Set("User-Agent", "VSServices/16.255.35410.1")
		h.Set("Authorization", adowebhook.BasicAuth(adowebhook.DefaultWebhookUser, secret))
	case forge.Gitea:
		h.Set("User-Agent", "Go-http-client/1.1")
		h.Set(giteawebhook.HeaderEvent, event)
		h.Set(giteawebhook.HeaderDelivery, id)
		h.Set(giteawebhook.HeaderSignature, giteawebhook.Sign(secret, body))
	default:
		return nil, fmt.Errorf("no sample deliveries for %q", kind)
	}
	return h, nil
}

// CorpusEvent is the event header value a host sends for a corpus file, from its name
// (`<event>[.<action>][.<variant>].json`; GitLab's and Bitbucket's as their HEADERS.md say).
func CorpusEvent(kind forge.Kind, file string) string {
	first := strings.SplitN(path.Base(file), ".", 2)[0]
	switch kind {
	case forge.GitLab:
		return map[string]string{
			"push": "Push Hook", "tag_push": "Tag Push Hook", "merge_request": "Merge Request Hook",
			"project_hook": "Project Hook", "system_hook": "System Hook",
		}[first]
	case forge.BitbucketDC:
		parts := strings.SplitN(strings.TrimSuffix(path.Base(file), ".json"), ".", 3)
		if len(parts) < 2 {
			return first
		}
		return parts[0] + ":" + parts[1] // repo.refs_changed → repo:refs_changed
	case forge.AzureDevOps:
		return "" // the event type is in the body
	}
	return first
}
