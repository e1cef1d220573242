package deploy_test

import (
	"strings"
	"testing"

	"github.com/l402kit/l402kit/deploy"
)

func TestFilesHoldTheirPlaceholders(t *testing.T) {
	want := map[string][]string{
		"nginx/l402.conf":     {deploy.Upstream, deploy.Auth, deploy.NginxListen, deploy.NginxCacheDir, deploy.NginxCacheOn},
		"caddy/Caddyfile":     {deploy.Upstream, deploy.Auth, deploy.CaddySite},
		"traefik/traefik.yml": {deploy.TraefikListen, deploy.TraefikDynamic},
		"traefik/dynamic.yml": {deploy.Upstream, deploy.Auth},
	}
	for _, name := range deploy.Files {
		s, err := deploy.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range want[name] {
			if !strings.Contains(s, p) {
				t.Errorf("%s lacks the placeholder %q", name, p)
			}
		}
	}
	if _, err := deploy.Substitute("x", "abc", "zz", "y"); err == nil {
		t.Error("Substitute accepted an absent placeholder")
	}
	if got, err := deploy.Substitute("x", "a b a", "a", "c"); err != nil || got != "c b c" {
		t.Errorf("Substitute: %q %v", got, err)
	}
}
