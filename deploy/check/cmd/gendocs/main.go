// Command gendocs regenerates docs/configuration.md, the reference of every environment variable of every
// Greenwave service, from the services' own `--env-json`. Run it from anywhere inside the checkout:
//
//	go run ./deploy/check/cmd/gendocs          # rewrite docs/configuration.md
//	go run ./deploy/check/cmd/gendocs -check   # fail if the committed file is stale
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/greenwave-city/greenwave/deploy/check"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gendocs", flag.ContinueOnError)
	verify := fs.Bool("check", false, "do not write: fail if "+check.ConfigurationDoc+" differs from what the code says")
	if err := fs.Parse(args); err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := check.FindRepoRoot(wd)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "gendocs-")
	if err != nil {
		return fmt.Errorf("create build directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	bins, err := check.BuildServices(ctx, root, tmp)
	if err != nil {
		return err
	}
	services, err := check.Configuration(ctx, bins)
	if err != nil {
		return err
	}
	doc := check.RenderConfiguration(services)
	path := filepath.Join(root, check.ConfigurationDoc)
	if *verify {
		have, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", check.ConfigurationDoc, err)
		}
		if !bytes.Equal(have, doc) {
			return fmt.Errorf("%s is stale: run 'go run ./deploy/check/cmd/gendocs' and commit it", check.ConfigurationDoc)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", check.ConfigurationDoc, err)
	}
	fmt.Printf("wrote %s (%d services)\n", check.ConfigurationDoc, len(services))
	return nil
}
