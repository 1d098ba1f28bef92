package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/zorgkluis/zorgkluis/internal/config"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

func runMigrate(ctx context.Context, e env, args []string) int {
	cfg, err := config.Load("migrate", args, e.getenv, e.stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "zorgkluis migrate:", err)
		return 2
	}
	db, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		fmt.Fprintln(e.stderr, "zorgkluis migrate:", err)
		return 1
	}
	defer db.Close()
	n, err := db.Migrate(ctx)
	if err != nil {
		fmt.Fprintln(e.stderr, "zorgkluis migrate:", err)
		return 1
	}
	fmt.Fprintf(e.stdout, "applied %d migration(s) to the %s database\n", n, db.Dialect())
	return 0
}
