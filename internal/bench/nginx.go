package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"text/template"

	"github.com/l402kit/l402kit/internal/childproc"
)

// nginxConf wraps the forward-auth configuration README documents in a
// standalone nginx that runs in the foreground with every file it writes in
// the run's temp dir.
const nginxConf = `daemon off;
master_process off;
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path {{.Dir}}/body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;

    map $http_authorization $l402_upstream_authorization {
        "~*^(L402|LSAT)\s" "";
        default $http_authorization;
    }

    server {
        listen {{.Listen}};

        location / {
            auth_request /_l402;
            auth_request_set $l402_paid $upstream_http_x_l402_paid;
            auth_request_set $l402_token_id $upstream_http_x_l402_token_id;
            auth_request_set $l402_status $upstream_http_x_l402_status;
            auth_request_set $l402_retry_after $upstream_http_retry_after;
            error_page 401 = @l402;

            proxy_set_header X-L402-Paid $l402_paid;
            proxy_set_header X-L402-Token-Id $l402_token_id;
            proxy_set_header Authorization $l402_upstream_authorization;
            proxy_pass http://{{.Upstream}};
        }

        location = /_l402 {
            internal;
            proxy_pass http://{{.Auth}}/l402/auth?nginx=1;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Forwarded-Method $request_method;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Uri $request_uri;
            proxy_set_header X-Forwarded-For $remote_addr;
        }

        location @l402 {
            default_type application/json;
            add_header Cache-Control no-store always;
            add_header Retry-After $l402_retry_after always;
            if ($l402_status = 429) {
                return 429 '{"error":"too many payment challenges from this address; retry later"}\n';
            }
            if ($l402_status = 503) {
                return 503 '{"error":"payment service unavailable; retry later"}\n';
            }
            return 402 '{"error":"payment required: pay the invoice of the L402 challenge in WWW-Authenticate"}\n';
        }
    }
}
`

// nginxBin finds nginx; Debian puts it in /usr/sbin, which a non-root PATH
// lacks.
func nginxBin() (string, error) {
	if bin, err := exec.LookPath("nginx"); err == nil {
		return bin, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", fmt.Errorf("nginx not found in PATH or /usr/sbin (scripts/ci-deps.sh installs it)")
}

// startNginx runs nginx with the forward-auth configuration in front of
// upstream, asking auth (host:port of l402proxy) about each request.
func startNginx(ps *childproc.Group, dir, listen, upstream, auth string) (*childproc.Proc, error) {
	bin, err := nginxBin()
	if err != nil {
		return nil, err
	}
	dir = filepath.Join(dir, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var conf bytes.Buffer
	tmpl := template.Must(template.New("nginx").Parse(nginxConf))
	if err := tmpl.Execute(&conf, map[string]string{"Dir": dir, "Listen": listen, "Upstream": upstream, "Auth": auth}); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, conf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return ps.Start("nginx", bin, "-p", dir, "-c", path, "-e", filepath.Join(dir, "startup.log"))
}
