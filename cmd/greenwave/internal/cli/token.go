package cli

import (
	"fmt"
	"os"
	"strings"
)

// MinTokenLength is the shortest bearer token the CLI sends. The services keep only a token's SHA-256, so they
// cannot see its length; the check happens where the token itself is loaded, before a guessable token reaches
// the network.
const MinTokenLength = 16

// TokenAdvice says how to make a token that passes CheckToken.
const TokenAdvice = "generate one with `openssl rand -hex 32`"

// CheckToken refuses a token (loaded from the place named by from) that is shorter than MinTokenLength or holds
// whitespace or control characters, which cannot travel in "authorization: Bearer <token>". The error names
// from and the problem, never the token.
func CheckToken(from, token string) error {
	for _, r := range token {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("%s: the token holds whitespace or a control character", from)
		}
	}
	if n := len(token); n < MinTokenLength {
		return fmt.Errorf("%s: the token is %d characters long, shorter than the minimum %d; %s", from, n, MinTokenLength, TokenAdvice)
	}
	return nil
}

// ReadTokenFile reads a file holding one bearer token on one line (blank lines and surrounding whitespace are
// ignored) and checks it with CheckToken. Errors name the file and, for a bad token, its line as FILE:LINE.
func ReadTokenFile(flagName, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flagName, err)
	}
	token, line := "", 0
	for i, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if token != "" {
			return "", fmt.Errorf("%s %s:%d: a second non-blank line; the file must hold only the token", flagName, path, i+1)
		}
		token, line = l, i+1
	}
	if token == "" {
		return "", fmt.Errorf("%s %s is empty", flagName, path)
	}
	if err := CheckToken(fmt.Sprintf("%s %s:%d", flagName, path, line), token); err != nil {
		return "", err
	}
	return token, nil
}
