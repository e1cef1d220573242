package fronttest_test

import (
	"strings"
	"testing"

	"github.com/l402kit/l402kit/deploy"
	"github.com/l402kit/l402kit/internal/testenv/fronttest"
)

// TestREADMEShowsDeployFiles keeps README's forward-auth section and the
// files the front-server tests run identical: each file appears there
// whole, as one fenced block.
func TestREADMEShowsDeployFiles(t *testing.T) {
	readme := fronttest.RepoFile(t, "README.md")
	for _, f := range deploy.Files {
		content, err := deploy.Read(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(content, "\n") {
			t.Errorf("%s does not end with a newline", f)
		}
		if !strings.Contains(readme, "\n"+content+"```\n") {
			t.Errorf("README.md does not show %s verbatim (a fenced block holding exactly the file); copy the file into README's forward-auth section", f)
		}
	}
}
