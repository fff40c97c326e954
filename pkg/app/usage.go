package app

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/greenwave-city/greenwave/pkg/config"
)

// HandleFlags serves the command-line flags every service binary accepts instead of running: -h/--help prints
// the environment variables the service reads; --env-json prints them as JSON (what the configuration reference
// and the deployment checks are generated and verified from). It reports whether a flag was handled; any other
// argument is an error, since services are configured by environment only.
func HandleFlags(args []string, w io.Writer, service, summary string, cfg any) (bool, error) {
	if len(args) == 0 {
		return false, nil
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprintf(w, "%s — %s\n\nConfigured by environment variables:\n\n", service, summary)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
		for _, v := range config.Describe(cfg) {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Name, v.Default, v.Help)
		}
		return true, tw.Flush()
	case "--env-json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return true, enc.Encode(config.Describe(cfg))
	default:
		return true, fmt.Errorf("unknown argument %q: %s is configured by environment variables (see --help)", args[0], service)
	}
}
