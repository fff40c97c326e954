package signalcontrol

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Operator is one person or system allowed to override plans.
type Operator struct {
	Name string `yaml:"name"`
	// TokenSHA256 is the hex SHA-256 of the operator's bearer token; the token itself is never stored.
	TokenSHA256 string `yaml:"token_sha256"`
	// NextTokenSHA256 is set while the operator's token is rotated: the current and the next token both
	// authenticate the operator, so the operator's tools can switch at any moment before the old hash is removed.
	NextTokenSHA256 string `yaml:"next_token_sha256,omitempty"`
	// Intersections limits the operator to these intersections; empty means every intersection.
	Intersections []string `yaml:"intersections,omitempty"`

	// digests are the decoded TokenSHA256 and, during a rotation, NextTokenSHA256.
	digests [][]byte
}

// tokensFile is the SIGNAL_OPERATOR_TOKENS_FILE format.
type tokensFile struct {
	Operators []Operator `yaml:"operators"`
}

// Operators authenticates override requests. The zero value (no tokens file) denies every request.
type Operators struct {
	list []Operator
}

// LoadOperators reads a tokens file; an empty path gives Operators that deny every override.
func LoadOperators(path string) (*Operators, error) {
	if path == "" {
		return &Operators{}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read operator tokens: %w", err)
	}
	ops, err := ParseOperators(b)
	if err != nil {
		return nil, fmt.Errorf("operator tokens %s: %w", path, err)
	}
	return ops, nil
}

// ParseOperators decodes and checks a tokens file, naming every problem with its operator's position.
func ParseOperators(b []byte) (*Operators, error) {
	var f tokensFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	var problems []string
	names := map[string]bool{}
	owners := map[string]string{} // digest → which field of which operator holds it
	for i := range f.Operators {
		op := &f.Operators[i]
		where := fmt.Sprintf("operators[%d] (%s)", i, op.Name)
		if op.Name == "" || names[op.Name] {
			problems = append(problems, where+": name is empty or duplicate")
		}
		names[op.Name] = true
		for _, t := range []struct{ field, value string }{{"token_sha256", op.TokenSHA256}, {"next_token_sha256", op.NextTokenSHA256}} {
			if t.field == "next_token_sha256" && t.value == "" {
				continue // optional: set only during a rotation
			}
			d, err := hex.DecodeString(t.value)
			switch {
			case err != nil || len(d) != sha256.Size:
				problems = append(problems, fmt.Sprintf("%s: %s is not 64 hex digits", where, t.field))
			case owners[string(d)] != "":
				problems = append(problems, fmt.Sprintf("%s: %s is also the %s; every token, current or next, must be unique", where, t.field, owners[string(d)]))
			default:
				owners[string(d)] = fmt.Sprintf("%s of operator %q", t.field, op.Name)
				op.digests = append(op.digests, d)
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%d problems: %s", len(problems), strings.Join(problems, "; "))
	}
	return &Operators{list: f.Operators}, nil
}

// Authenticate returns the operator presenting the bearer token of the request's "authorization" metadata.
// A missing, malformed or unknown token is UNAUTHENTICATED; no operators configured is PERMISSION_DENIED.
func (o *Operators) Authenticate(ctx context.Context) (Operator, error) {
	if len(o.list) == 0 {
		return Operator{}, status.Error(codes.PermissionDenied, "overrides are disabled: no SIGNAL_OPERATOR_TOKENS_FILE configured")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		return Operator{}, status.Error(codes.Unauthenticated, "authorization metadata \"Bearer <token>\" is required")
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(token) == "" {
		return Operator{}, status.Error(codes.Unauthenticated, "authorization must be \"Bearer <token>\"")
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	found := -1
	for i, op := range o.list {
		// Compare every digest, current and next, in constant time and without stopping at a match, so the
		// response time says nothing about the tokens, nor which operator or which of its tokens matched.
		for _, d := range op.digests {
			if subtle.ConstantTimeCompare(sum[:], d) == 1 {
				found = i
			}
		}
	}
	if found < 0 {
		return Operator{}, status.Error(codes.Unauthenticated, "unknown operator token")
	}
	return o.list[found], nil
}

// Allows reports whether the operator may override the intersection.
func (op Operator) Allows(intersection string) bool {
	return len(op.Intersections) == 0 || slices.Contains(op.Intersections, intersection)
}
