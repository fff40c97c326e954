package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadTokenFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const good = "0123456789abcdef0123"
	tests := []struct {
		name, content, want, wantErr string
	}{
		{name: "one line", content: good + "\n", want: good},
		{name: "blank lines and spaces around", content: "\n\n  " + good + "\t\n\n", want: good},
		{name: "exactly the minimum", content: good[:MinTokenLength], want: good[:MinTokenLength]},
		{name: "empty", content: "\n \n", wantErr: "is empty"},
		{name: "too short, on line 3", content: "\n\nshort-secret\n", wantErr: ":3: the token is 12 characters long, shorter than the minimum 16; generate one"},
		{name: "two tokens", content: good + "\n" + good + "x\n", wantErr: ":2: a second non-blank line"},
		{name: "inner space", content: "0123456789 abcdef0123\n", wantErr: ":1: the token holds whitespace or a control character"},
		{name: "control character", content: "0123456789\x01abcdef0123\n", wantErr: ":1: the token holds whitespace or a control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadTokenFile("--token-file", path)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("got %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "--token-file "+path) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %q, %v; want an error naming %s with %q", got, err, path, tt.wantErr)
			}
			// The error names the file, never the token.
			if tok := strings.TrimSpace(tt.content); tok != "" && strings.Contains(err.Error(), strings.Fields(tok)[0]) {
				t.Errorf("error %q holds the token", err)
			}
		})
	}
	if _, err := ReadTokenFile("--token-file", filepath.Join(dir, "missing")); err == nil || !strings.HasPrefix(err.Error(), "--token-file: open ") {
		t.Errorf("missing file: %v", err)
	}
}
