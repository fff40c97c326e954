// Package cli holds what every greenwave command shares: the usage error that makes the process exit with
// status 2, flag sets whose --help prints the command's usage, the speed flag of dev and replay, and the TLS
// credentials of the commands that call a Greenwave gRPC service.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// UsageError is a command-line mistake: the command did not run. The CLI prints it and exits with status 2.
type UsageError struct{ Msg string }

// Error implements error.
func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a *UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// ExitCode reports err on stderr and maps it to the process exit status: 0 for success and --help, 2 for a
// *UsageError, 1 otherwise.
func ExitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	}
	fmt.Fprintf(stderr, "greenwave: %v\n", err)
	if _, ok := errors.AsType[*UsageError](err); ok {
		return 2
	}
	return 1
}

// NewFlagSet returns a FlagSet for a command whose --help prints "Usage: greenwave NAME SYNOPSIS", the
// description and the flags to stderr. Parse it with ParseFlags or ParseFlagsAllowArgs.
func NewFlagSet(name, synopsis, description string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: greenwave %s %s\n\n%s\n\nFlags:\n", name, synopsis, strings.TrimSpace(description))
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// ParseFlags parses args into fs. --help prints the usage and yields flag.ErrHelp; a mistake yields a
// *UsageError that points at --help instead of printing the whole usage. Positional arguments are refused.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	if err := ParseFlagsAllowArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return Usagef("%s: unexpected arguments %q (see greenwave %s --help)", fs.Name(), fs.Args(), fs.Name())
	}
	return nil
}

// ParseFlagsAllowArgs is ParseFlags for a command that takes positional arguments: they are left in fs.Args().
func ParseFlagsAllowArgs(fs *flag.FlagSet, args []string) error {
	// flag prints the usage itself on --help and on mistakes; print it only for --help, once.
	usage := fs.Usage
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage()
		return err
	case err != nil:
		return Usagef("%s: %v (see greenwave %s --help)", fs.Name(), err, fs.Name())
	}
	return nil
}

// SeparateFileArgs splits args into flags and positional arguments, so that FILE may come before, between or
// after the flags (the flag package stops at the first positional argument). A flag is assumed to take a
// separate value ("--speed max") unless written --flag=value or named in boolFlags; everything after "--" is
// positional.
func SeparateFileArgs(args []string, boolFlags ...string) (flags, files []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return flags, append(files, args[i+1:]...)
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			files = append(files, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if !strings.Contains(name, "=") && !slices.Contains(boolFlags, name) && name != "h" && name != "help" && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return flags, files
}

// Speed is a flag.Value: a positive speed-up factor ("600" or "600x"), or "max", stored as 0, for as fast as
// the collector acknowledges.
type Speed float64

// String implements flag.Value.
func (s *Speed) String() string {
	if *s == 0 {
		return "max"
	}
	return strconv.FormatFloat(float64(*s), 'g', -1, 64)
}

// Set implements flag.Value.
func (s *Speed) Set(v string) error {
	if v == "max" {
		*s = 0
		return nil
	}
	f, err := strconv.ParseFloat(strings.TrimSuffix(v, "x"), 64)
	if err != nil || f <= 0 || f > 1e9 {
		return errors.New(`want a positive factor such as 600, or "max"`)
	}
	*s = Speed(f)
	return nil
}

// Counts renders counts by name as "a 3, b 1": largest first, then by name.
func Counts(m map[string]int) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
