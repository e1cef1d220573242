package nwc

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	nostr "github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip44"
)

// TestNIP44Vectors checks the NIP-44 v2 implementation this package uses
// against the specification's published vectors (testdata/README.md).
func TestNIP44Vectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/nip44.vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != "269ed0f69e4c192512cc779e78c555090cebc7c785b609e338a62afc3ce25040" {
		t.Fatalf("vector file checksum %x is not the one NIP-44 publishes", sum)
	}
	var v struct {
		V2 struct {
			Valid struct {
				EncryptDecrypt []struct {
					Sec1            string `json:"sec1"`
					Sec2            string `json:"sec2"`
					ConversationKey string `json:"conversation_key"`
					Nonce           string `json:"nonce"`
					Plaintext       string `json:"plaintext"`
					Payload         string `json:"payload"`
				} `json:"encrypt_decrypt"`
				GetConversationKey []struct {
					Sec1            string `json:"sec1"`
					Pub2            string `json:"pub2"`
					ConversationKey string `json:"conversation_key"`
				} `json:"get_conversation_key"`
			} `json:"valid"`
			Invalid struct {
				Decrypt []struct {
					ConversationKey string `json:"conversation_key"`
					Payload         string `json:"payload"`
					Note            string `json:"note"`
				} `json:"decrypt"`
				GetConversationKey []struct {
					Sec1 string `json:"sec1"`
					Pub2 string `json:"pub2"`
					Note string `json:"note"`
				} `json:"get_conversation_key"`
			} `json:"invalid"`
		} `json:"v2"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range v.V2.Valid.GetConversationKey {
		k, err := nip44.GenerateConversationKey(c.Pub2, c.Sec1)
		if err != nil || hex.EncodeToString(k[:]) != c.ConversationKey {
			t.Errorf("conversation key of %s/%s: %x %v, want %s", c.Sec1, c.Pub2, k, err, c.ConversationKey)
		}
		n++
	}
	for _, c := range v.V2.Valid.EncryptDecrypt {
		pub2, err := nostr.GetPublicKey(c.Sec2)
		if err != nil {
			t.Fatal(err)
		}
		k, err := nip44.GenerateConversationKey(pub2, c.Sec1)
		if err != nil || hex.EncodeToString(k[:]) != c.ConversationKey {
			t.Errorf("conversation key: %x %v, want %s", k, err, c.ConversationKey)
			continue
		}
		nonce, _ := hex.DecodeString(c.Nonce)
		got, err := nip44.Encrypt(c.Plaintext, k, nip44.WithCustomNonce(nonce))
		if err != nil || got != c.Payload {
			t.Errorf("encrypt %q: %q %v, want %q", c.Plaintext, got, err, c.Payload)
		}
		back, err := nip44.Decrypt(c.Payload, k)
		if err != nil || back != c.Plaintext {
			t.Errorf("decrypt: %q %v, want %q", back, err, c.Plaintext)
		}
		n++
	}
	for _, c := range v.V2.Invalid.Decrypt {
		kb, _ := hex.DecodeString(c.ConversationKey)
		if _, err := nip44.Decrypt(c.Payload, [32]byte(kb)); err == nil {
			t.Errorf("invalid payload decrypted (%s)", c.Note)
		}
		n++
	}
	for _, c := range v.V2.Invalid.GetConversationKey {
		if _, err := nip44.GenerateConversationKey(c.Pub2, c.Sec1); err == nil {
			t.Errorf("invalid conversation key accepted (%s)", c.Note)
		}
		n++
	}
	if n < 30 {
		t.Fatalf("only %d vectors read", n)
	}
}
