package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

// buildVersion is the module version, or "dev" in a source checkout.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func runVersion(_ context.Context, e env, _ []string) int {
	fmt.Fprintln(e.stdout, "zorgkluis", buildVersion())
	return 0
}
