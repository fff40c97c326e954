package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestProbe(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.WriteHeader(http.StatusOK)
		default:
			http.Error(w, `{"not_ready":["consumer group"]}`, http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"ready", []string{srv.URL + "/readyz"}, ""},
		{"not ready names the reason", []string{srv.URL + "/other"}, "consumer group"},
		{"no URL", nil, "usage"},
		{"two URLs", []string{srv.URL, srv.URL}, "usage"},
		{"not http", []string{"ftp://x/readyz"}, "not an http(s) URL"},
		{"no host", []string{"http:///readyz"}, "not an http(s) URL"},
		{"nothing listening", []string{"-timeout", "1s", "http://127.0.0.1:1/readyz"}, "probe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := run(tt.args, io.Discard)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("run(%q) = %v, want nil", tt.args, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("run(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}
