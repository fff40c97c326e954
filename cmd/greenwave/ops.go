package main

import (
	"context"
	"errors"
	"io"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/ops"
)

// The operator commands live in internal/ops so that the end-to-end tests can run them in-process; these
// adapters register them in the dispatch table.

func runTopics(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return opsErr(ops.Topics(ctx, args, stdout, stderr))
}

func runTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return opsErr(ops.Tail(ctx, args, stdout, stderr))
}

func runModels(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return opsErr(ops.Models(ctx, args, stdout, stderr))
}

func runPlans(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return opsErr(ops.Plans(ctx, args, stdout, stderr))
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return opsErr(ops.Status(ctx, args, stdout, stderr))
}

// opsErr turns an *ops.UsageError into this package's usage error, so a command-line mistake exits with
// status 2; every other error (and flag.ErrHelp) passes through.
func opsErr(err error) error {
	if ue, ok := errors.AsType[*ops.UsageError](err); ok {
		return usagef("%s", ue.Msg)
	}
	return err
}
