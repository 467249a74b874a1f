package forge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Exchange sends hr with hc and reads the answer, at most limit bytes: the part of a REST call
// every driver shares. A transport failure becomes a HostError that names the host (product:
// "cannot reach GitHub: …") and neither the request's URL nor its credential; a cancelled or
// expired ctx comes back as ctx's error, wrapped with op. The answer's body is read and
// closed; its status and headers are the caller's to judge.
func Exchange(ctx context.Context, hc *http.Client, hr *http.Request, op, product string, limit int64) (*http.Response, []byte, error) {
	resp, err := hc.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("%s: %w", op, ctx.Err())
		}
		return nil, nil, &HostError{Op: op, Message: "cannot reach " + product + ": " + scrubbed(hr, StripURL(err))}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("%s: %w", op, ctx.Err())
		}
		return nil, nil, &HostError{Op: op, Status: resp.StatusCode,
			Message: "reading " + possessive(product) + " answer failed: " + scrubbed(hr, StripURL(err))}
	}
	return resp, body, nil
}

// scrubbed is err's text without the credential hr carried: only failures pay for the
// Scrubber.
func scrubbed(hr *http.Request, err error) string {
	return Scrubber("Authorization: " + hr.Header.Get("Authorization"))(err.Error())
}

// StripURL returns a transport error without the request URL that net/http wraps around it:
// errors name the failure, not the request, and a URL with a code or a query in it (an OAuth
// callback's, a manifest conversion's) must not reach a log.
func StripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// possessive is "GitHub's", or "Azure DevOps'" for a name ending in s.
func possessive(product string) string {
	if strings.HasSuffix(product, "s") {
		return product + "'"
	}
	return product + "'s"
}
