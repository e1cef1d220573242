package bolt12

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func readVectors(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func TestFormatStringVectors(t *testing.T) {
	var vs []struct {
		Comment string `json:"comment"`
		Valid   bool   `json:"valid"`
		String  string `json:"string"`
	}
	readVectors(t, "format-string-test.json", &vs)
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for i, v := range vs {
		_, err := DecodeOffer(v.String)
		if v.Valid && err != nil {
			t.Errorf("%d %s: %v", i, v.Comment, err)
		}
		if !v.Valid {
			if err == nil {
				t.Errorf("%d %s: decoded an invalid string", i, v.Comment)
			} else if !errors.Is(err, ErrInvalid) {
				t.Errorf("%d %s: %v does not match ErrInvalid", i, v.Comment, err)
			}
		}
	}
}

func TestOfferVectors(t *testing.T) {
	var vs []struct {
		Description string `json:"description"`
		Valid       bool   `json:"valid"`
		Bolt12      string `json:"bolt12"`
		Fields      []struct {
			Type   uint64 `json:"type"`
			Length int    `json:"length"`
			Hex    string `json:"hex"`
		} `json:"fields"`
	}
	readVectors(t, "offers-test.json", &vs)
	valid, invalid := 0, 0
	for _, v := range vs {
		o, err := DecodeOffer(v.Bolt12)
		if !v.Valid {
			invalid++
			if err == nil {
				t.Errorf("%s: decoded an invalid offer", v.Description)
			}
			continue
		}
		valid++
		if err != nil {
			t.Errorf("%s: %v", v.Description, err)
			continue
		}
		if len(o.Records) != len(v.Fields) {
			t.Errorf("%s: %d records, want %d", v.Description, len(o.Records), len(v.Fields))
			continue
		}
		for i, f := range v.Fields {
			r := o.Records[i]
			if r.Type != f.Type || len(r.Value) != f.Length || hex.EncodeToString(r.Value) != f.Hex {
				t.Errorf("%s: record %d is %d/%x, want %d/%s", v.Description, i, r.Type, r.Value, f.Type, f.Hex)
			}
		}
		// Written again from the decoded fields, the string is the same
		// (unknown odd fields aside, which Encode does not know).
		known := true
		for _, r := range o.Records {
			known = known && r.Type <= typeOfferIssuerID
		}
		if known {
			o2 := *o
			o2.Records = nil
			s, err := o2.Encode()
			if err != nil || s != strings.ToLower(v.Bolt12) {
				t.Errorf("%s: encoded again as %s, %v", v.Description, s, err)
			}
		}
	}
	if valid == 0 || invalid == 0 {
		t.Fatalf("%d valid and %d invalid vectors", valid, invalid)
	}
}

// leafTLV finds the TLV hex in a key such as "H(`LnLeaf`,010203e8)".
var leafTLV = regexp.MustCompile("^H\\(`LnLeaf`,([0-9a-f]+)\\)$")

func TestSignatureVectors(t *testing.T) {
	var vs []map[string]json.RawMessage
	readVectors(t, "signature-test.json", &vs)
	for _, v := range vs {
		var comment, merkle string
		json.Unmarshal(v["comment"], &comment)
		json.Unmarshal(v["merkle"], &merkle)
		var leaves []map[string]string
		json.Unmarshal(v["leaves"], &leaves)
		var stream []byte
		for _, l := range leaves {
			for k := range l {
				if m := leafTLV.FindStringSubmatch(k); m != nil {
					b, _ := hex.DecodeString(m[1])
					stream = append(stream, b...)
				}
			}
		}
		records, err := ParseTLV(stream)
		if err != nil || len(records) != len(leaves) {
			t.Fatalf("%s: %d records from %d leaves: %v", comment, len(records), len(leaves), err)
		}
		root := MerkleRoot(records)
		if hex.EncodeToString(root[:]) != merkle {
			t.Errorf("%s: merkle root %x, want %s", comment, root, merkle)
		}
		raw, ok := v["bolt12"]
		if !ok {
			continue
		}
		var s, tag, tagHash, sig string
		json.Unmarshal(raw, &s)
		json.Unmarshal(v["signature_tag"], &tag)
		json.Unmarshal(v["H(signature_tag,merkle)"], &tagHash)
		json.Unmarshal(v["signature"], &sig)
		q, err := DecodeInvoiceRequest(s)
		if err != nil {
			t.Fatalf("%s: %v", comment, err)
		}
		if tag != "lightninginvoice_requestsignature" {
			t.Fatalf("%s: tag %q", comment, tag)
		}
		h := SignatureHash("invoice_request", "signature", MerkleRoot(q.Records))
		if hex.EncodeToString(h[:]) != tagHash {
			t.Errorf("%s: signature hash %x, want %s", comment, h, tagHash)
		}
		if hex.EncodeToString(q.Signature) != sig {
			t.Errorf("%s: signature %x, want %s", comment, q.Signature, sig)
		}
		if q.Description != "A Mathematical Treatise" || q.Currency != "USD" || q.Amount != 100 {
			t.Errorf("%s: decoded %+v", comment, q.Offer)
		}
	}
}
