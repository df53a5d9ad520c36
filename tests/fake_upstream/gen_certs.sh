#!/usr/bin/env bash
# gen_certs.sh DIR: a throwaway PKI for TLS tests of the fake upstream (and tollgate's
# UPSTREAM_CA_FILE), made with the openssl CLI:
#   DIR/ca.pem, DIR/ca.key          a test CA
#   DIR/server.pem, DIR/server.key  a server certificate for DNS:localhost and IP:127.0.0.1,
#                                   signed by that CA
#   DIR/other-ca.pem, other-ca.key  an unrelated CA: verifying the server with it must fail
# Keys are P-256 ECDSA, valid 10 years. Existing files in DIR are overwritten.
set -euo pipefail

dir=${1:?usage: gen_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

days=3650
newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

make_ca() { # name subject
    openssl req -x509 "${newkey[@]}" -keyout "$1.key" -out "$1.pem" -days "$days" \
        -subj "$2" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

make_ca ca "/CN=tollgate test CA"
make_ca other-ca "/CN=tollgate unrelated test CA"

openssl req "${newkey[@]}" -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
cat >server.ext <<'EXT'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
EXT
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
    -days "$days" -extfile server.ext 2>/dev/null
rm -f server.csr server.ext ca.srl
chmod 600 ./*.key
openssl verify -CAfile ca.pem server.pem >/dev/null
