// Package events owns normalized events: turning a stored delivery into CloudEvents through
// its host's driver (the processing job), the event log, and waking stream readers when
// new events are committed.
package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// CloudEvent is the structured-mode CloudEvents 1.0 document of spec/events.md.
type CloudEvent struct {
	SpecVersion      string          `json:"specversion"`
	ID               string          `json:"id"`
	Source           string          `json:"source"`
	Type             string          `json:"type"`
	Subject          string          `json:"subject,omitempty"`
	Time             string          `json:"time"`
	DataContentType  string          `json:"datacontenttype"`
	ForgewayHost     string          `json:"forgewayhost"`
	ForgewayDelivery string          `json:"forgewaydelivery"`
	ForgewayRepo     string          `json:"forgewayrepo,omitempty"`
	Data             json.RawMessage `json:"data"`
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// EventID is the id of the index-th event of a delivery: derived, so that processing the
// same delivery again yields the same ids and the log keeps one copy.
func EventID(deliveryID string, index int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", deliveryID, index))
	return "evt_" + strings.ToLower(idEncoding.EncodeToString(sum[:16]))
}

// DeliveryRef says which delivery an event came from.
type DeliveryRef struct {
	ID            string // Forgeway's delivery id
	HostID        string // the host's delivery id
	Kind          string
	IntegrationID string
	ReceivedAt    time.Time
}

// Build gives a normalized event its envelope.
func Build(d DeliveryRef, index int, ev forge.Event) (CloudEvent, error) {
	data, err := dataDocument(d.IntegrationID, ev)
	if err != nil {
		return CloudEvent{}, err
	}
	t := ev.Time
	if t.IsZero() {
		t = d.ReceivedAt
	}
	ce := CloudEvent{
		SpecVersion:      "1.0",
		ID:               EventID(d.ID, index),
		Source:           "/integrations/" + d.IntegrationID,
		Type:             ev.Type,
		Subject:          ev.Subject,
		Time:             t.UTC().Format(time.RFC3339Nano),
		DataContentType:  "application/json",
		ForgewayHost:     d.Kind,
		ForgewayDelivery: d.HostID,
		Data:             data,
	}
	if ev.Repository != nil {
		ce.Source += "/repositories/" + ev.Repository.ID
		ce.ForgewayRepo = ev.Repository.FullName
	}
	return ce, nil
}

// dataDocument flattens the type-specific data with the fields every event's data has:
// integration_id, repository (or null) and sender. The common fields are written first and
// the data's own object is spliced after them (one encoding, no decode and re-encode).
func dataDocument(integrationID string, ev forge.Event) (json.RawMessage, error) {
	common, err := json.Marshal(struct {
		IntegrationID string                 `json:"integration_id"`
		Repository    *forge.EventRepository `json:"repository"`
		Sender        forge.Actor            `json:"sender"`
	}{integrationID, ev.Repository, ev.Sender})
	if err != nil {
		return nil, fmt.Errorf("encode %s data: %w", ev.Type, err)
	}
	if ev.Data == nil {
		return common, nil
	}
	data, err := json.Marshal(ev.Data)
	if err != nil {
		return nil, fmt.Errorf("encode %s data: %w", ev.Type, err)
	}
	data = bytes.TrimSpace(data)
	if len(data) < 2 || data[0] != '{' {
		return nil, fmt.Errorf("%s data is not an object", ev.Type)
	}
	if string(data) == "{}" {
		return common, nil
	}
	out := make([]byte, 0, len(common)+len(data))
	out = append(out, common[:len(common)-1]...) // without its closing brace
	out = append(out, ',')
	return append(out, data[1:]...), nil
}
