package signalcontrol

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestParseOperatorsErrors(t *testing.T) {
	h := sha("x")
	cases := []struct{ name, body, want string }{
		{"bad hash", "operators:\n  - {name: a, token_sha256: abc}", "operators[0] (a): token_sha256 is not 64 hex digits"},
		{"missing current", "operators:\n  - {name: a, next_token_sha256: " + h + "}", "operators[0] (a): token_sha256 is not 64 hex digits"},
		{"bad next hash", "operators:\n  - {name: a, token_sha256: " + h + ", next_token_sha256: zz}", "operators[0] (a): next_token_sha256 is not 64 hex digits"},
		{"shared current", "operators:\n  - {name: a, token_sha256: " + h + "}\n  - {name: b, token_sha256: " + h + "}", `operators[1] (b): token_sha256 is also the token_sha256 of operator "a"`},
		{"next equals own current", "operators:\n  - {name: a, token_sha256: " + h + ", next_token_sha256: " + strings.ToUpper(h) + "}", `operators[0] (a): next_token_sha256 is also the token_sha256 of operator "a"`},
		{"next is another's current", "operators:\n  - {name: a, token_sha256: " + h + "}\n  - {name: b, token_sha256: " + sha("y") + ", next_token_sha256: " + h + "}", `operators[1] (b): next_token_sha256 is also the token_sha256 of operator "a"`},
		{"current is another's next", "operators:\n  - {name: a, token_sha256: " + sha("y") + ", next_token_sha256: " + h + "}\n  - {name: b, token_sha256: " + h + "}", `operators[1] (b): token_sha256 is also the next_token_sha256 of operator "a"`},
		{"shared next", "operators:\n  - {name: a, token_sha256: " + sha("y") + ", next_token_sha256: " + h + "}\n  - {name: b, token_sha256: " + sha("z") + ", next_token_sha256: " + h + "}", `operators[1] (b): next_token_sha256 is also the next_token_sha256 of operator "a"`},
		{"duplicate name", "operators:\n  - {name: a, token_sha256: " + h + "}\n  - {name: a, token_sha256: " + sha("y") + "}", "operators[1] (a): name is empty or duplicate"},
		{"unknown key", "operators:\n  - {name: a, next_token: secret, token_sha256: " + h + "}", "next_token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseOperators([]byte(c.body))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

// TestOperatorRotation: while next_token_sha256 is set, the current and the next token both authenticate their
// own operator and nothing else.
func TestOperatorRotation(t *testing.T) {
	ops, err := ParseOperators([]byte("operators:\n" +
		"  - {name: rotating, token_sha256: " + sha("old") + ", next_token_sha256: " + sha("new") + "}\n" +
		"  - {name: steady, token_sha256: " + sha("steady") + ", intersections: [A]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, token, want string
	}{
		{"current token", "old", "rotating"},
		{"next token", "new", "rotating"},
		{"single token", "steady", "steady"},
		{"other token", "older", ""},
		{"hash instead of token", sha("new"), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+c.token))
			op, err := ops.Authenticate(ctx)
			switch {
			case c.want == "" && status.Code(err) != codes.Unauthenticated:
				t.Errorf("Authenticate(%q) = %v, %v; want UNAUTHENTICATED", c.token, op.Name, err)
			case c.want != "" && (err != nil || op.Name != c.want):
				t.Errorf("Authenticate(%q) = %v, %v; want %s", c.token, op.Name, err, c.want)
			}
		})
	}
}
