package main

import (
	"testing"
	"time"
)

func TestForwardAuthCacheFlag(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil || o.forwardAuthCache != 0 {
		t.Fatalf("default: %v %v, want 0 (no caching)", o, err)
	}
	if o, err := parseFlags([]string{"--forward-auth-cache", "60s"}); err != nil || o.forwardAuthCache != time.Minute {
		t.Fatalf("--forward-auth-cache 60s: %+v %v", o, err)
	}
	t.Setenv("L402_FORWARD_AUTH_CACHE", "30s")
	if o, err := parseFlags(nil); err != nil || o.forwardAuthCache != 30*time.Second {
		t.Fatalf("L402_FORWARD_AUTH_CACHE=30s: %+v %v", o, err)
	}
	if _, err := parseFlags([]string{"--forward-auth-cache", "-1s"}); err == nil {
		t.Error("--forward-auth-cache -1s accepted")
	}
}
