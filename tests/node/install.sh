#!/usr/bin/env bash
# Installs the pinned npm packages the end-to-end tests use (openai, @langchain/openai),
# from package-lock.json, when they are missing or stale.
set -euo pipefail
cd "$(dirname "$0")"
stamp=node_modules/.installed-lock
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then exit 0; fi
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
