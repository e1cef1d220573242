package lnurl

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
)

// The JSON documents of LUD-06 and LUD-21, shared by client and server.

// payParams is the first response of LUD-06 (step 3).
type payParams struct {
	Tag         string `json:"tag"`
	Callback    string `json:"callback"`
	MinSendable int64  `json:"minSendable"`
	MaxSendable int64  `json:"maxSendable"`
	Metadata    string `json:"metadata"`
}

// invoiceResponse is the callback's answer (LUD-06 step 5), with LUD-21's
// optional verify URL.
type invoiceResponse struct {
	PR     string `json:"pr"`
	Routes []any  `json:"routes"`
	Verify string `json:"verify,omitempty"`
}

// verifyResponse is what a LUD-21 verify URL answers.
type verifyResponse struct {
	Status   string  `json:"status"`
	Settled  bool    `json:"settled"`
	Preimage *string `json:"preimage"`
	PR       string  `json:"pr"`
}

// statusResponse is the {"status": ..., "reason": ...} envelope every LNURL
// endpoint may answer instead of its document.
type statusResponse struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// metadataHash is what an invoice's description hash must be: the SHA-256
// of the metadata string exactly as sent, in UTF-8 (LUD-06 step 6).
func metadataHash(metadata string) [32]byte { return sha256.Sum256([]byte(metadata)) }

// parseMetadata checks the LUD-06 shape of metadata (a JSON array of arrays,
// each starting with a string type, with exactly one text/plain entry) and
// returns its entries by type (first of each).
func parseMetadata(metadata string) (map[string]json.RawMessage, error) {
	var entries [][]json.RawMessage
	if err := json.Unmarshal([]byte(metadata), &entries); err != nil {
		return nil, fmt.Errorf("metadata is not a JSON array of arrays: %v", err)
	}
	byType := make(map[string]json.RawMessage, len(entries))
	plain := 0
	for i, e := range entries {
		if len(e) == 0 {
			return nil, fmt.Errorf("metadata entry %d is empty", i)
		}
		var typ string
		if err := json.Unmarshal(e[0], &typ); err != nil {
			return nil, fmt.Errorf("metadata entry %d: type is not a string", i)
		}
		if typ == "text/plain" {
			plain++
		}
		if _, seen := byType[typ]; !seen && len(e) > 1 {
			byType[typ] = e[1]
		}
	}
	if plain != 1 {
		return nil, fmt.Errorf("metadata has %d text/plain entries, LUD-06 wants exactly one", plain)
	}
	return byType, nil
}

// metadataIdentifier returns the text/identifier or text/email entry of
// LUD-16, lowered, or "" when there is none.
func metadataIdentifier(byType map[string]json.RawMessage) string {
	for _, typ := range []string{"text/identifier", "text/email"} {
		var s string
		if raw, ok := byType[typ]; ok && json.Unmarshal(raw, &s) == nil {
			return strings.ToLower(s)
		}
	}
	return ""
}

// buildMetadata returns the metadata string the server sends for a name:
// its description and, per LUD-16, its identifier.
func buildMetadata(description, identifier string) string {
	b, err := json.Marshal([][]string{{"text/plain", description}, {"text/identifier", identifier}})
	if err != nil {
		// Marshalling strings cannot fail.
		panic(err)
	}
	return string(b)
}
