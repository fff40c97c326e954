// Command healthprobe is the container health check of the Greenwave images. The images are distroless (no
// shell, no curl), so HEALTHCHECK runs this static binary instead:
//
//	healthprobe [-timeout 2s] [-insecure] http://127.0.0.1:8080/readyz
//
// It exits 0 when the URL answers 2xx within the timeout and 1 otherwise, printing why. -insecure skips
// certificate verification, for probing a service that serves TLS on loopback with a certificate issued for its
// public name.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "healthprobe: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("healthprobe", flag.ContinueOnError)
	fs.SetOutput(out)
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
	insecure := fs.Bool("insecure", false, "skip TLS certificate verification (loopback probes only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: healthprobe [-timeout 2s] [-insecure] URL")
	}
	target := fs.Arg(0)
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", target)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	return probe(ctx, target, *insecure)
}

func probe(ctx context.Context, target string, insecure bool) error {
	transport := &http.Transport{DisableKeepAlives: true}
	if insecure {
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // loopback health probe, documented flag
	}
	client := &http.Client{Transport: transport}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", target, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", target, err)
	}
	defer resp.Body.Close()
	// The body says why a service is not ready (pkg/server writes the failing checks); show a bounded prefix.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("probe %s: %s: %s", target, resp.Status, body)
	}
	return nil
}
