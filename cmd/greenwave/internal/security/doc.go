// Package security holds the tests that check Greenwave's security promises across every service at once: the
// authorisation matrix (every gRPC method and HTTP route of the five services against anonymous, wrong, out of
// scope and valid tokens, untrusted, missing and expired client certificates and plaintext on a TLS port, each
// with its exact status) and the absence of tokens and private keys from logs, metrics, error messages and
// --help. The tests run the real service binaries (internal/stack) against an embedded broker; README.md's
// Security section shows the matrix and a test keeps it in step. The package has no non-test code.
package security
