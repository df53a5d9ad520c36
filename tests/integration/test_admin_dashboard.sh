#!/usr/bin/env bash
# Issue 8 (static_files.c): /dashboard/ serves DASHBOARD_DIR read-only: "/" and "/dashboard"
# redirect to "/dashboard/", which is index.html; files get their content type, no-cache,
# nosniff and a CSP; HEAD gives the length without the body; anything outside the directory,
# a directory, a dotted or odd name is 404 (OpenAI error shape); other methods 405 with Allow.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_admin.sh"
start_fake
DB_URL=$(new_db admin_dash)
D="$T/dash"
mkdir -p "$D/js"
echo '<!doctype html><title>tollgate</title>' >"$D/index.html"
echo 'body{}' >"$D/app.css"
echo 'export const x = 1;' >"$D/js/app.js"
echo '<svg/>' >"$D/logo.svg"
head -c 300000 /dev/urandom >"$D/blob.bin"
start_admin tg DASHBOARD_DIR="$D"

get() { curl_tg "$TG_URL$1" "${@:2}" -o "$T/body"; }
for p in / /dashboard; do
    get "$p"
    assert_eq "302 /dashboard/" "$(status) $(header location)" "GET $p"
done
get /dashboard/
assert_eq "200 text/html; charset=utf-8" "$(status) $(header content-type)" "index"
cmp -s "$T/body" "$D/index.html" || fail "index body"
assert_eq "no-cache nosniff" "$(header cache-control) $(header x-content-type-options)" "headers"
[[ "$(header content-security-policy)" == "default-src 'self'"* ]] || fail "CSP"
while read -r path type file; do
    type=${type//_/ }
    get "$path"
    assert_eq "200 $type" "$(status) $(header content-type)" "GET $path"
    cmp -s "$T/body" "$D/$file" || fail "$path: body differs"
done <<EOT
/dashboard/app.css text/css;_charset=utf-8 app.css
/dashboard/js/app.js text/javascript;_charset=utf-8 js/app.js
/dashboard/logo.svg image/svg+xml logo.svg
/dashboard/blob.bin application/octet-stream blob.bin
/dashboard/index.html?v=3 text/html;_charset=utf-8 index.html
EOT
get /dashboard/blob.bin -I
assert_eq "200 300000" "$(status) $(header content-length)" "HEAD"
# curl -I writes the head to the output file: it must end right after the blank line
assert_eq 0d0a0d0a "$(tail -c 4 "$T/body" | od -An -tx1 | tr -d ' \n')" "HEAD has no body"
[ "$(stat -c %s "$T/body")" -lt 1000 ] || fail "HEAD sent the body"
for p in /dashboard/nope.html /dashboard/js /dashboard/js/ /dashboard/../README.md \
         /dashboard/%2e%2e/README.md /dashboard/a..b /dashboard/.hidden /dashboard/a%20b \
         /dashboard//etc/passwd; do
    get "$p"
    assert_eq 404 "$(status)" "GET $p"
    jq -e '.error.code == "not_found"' "$T/body" >/dev/null || fail "$p: body $(cat "$T/body")"
done
get /dashboard/ -X POST
assert_eq "405 GET, HEAD" "$(status) $(header allow)" "POST"
log "ok: dashboard files"
