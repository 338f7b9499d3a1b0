#!/bin/sh
# Creates throw-away TLS material for the tests in DIR:
#   ca.pem, ca.key          a test CA
#   server.pem, server.key  signed by that CA, SAN DNS:localhost, IP:127.0.0.1
#   other-ca.pem            an unrelated CA, for "unknown issuer" tests
# Needs only the openssl CLI. Quiet unless something fails.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
mkdir -p "$dir"
log="$dir/.certs.log"
: >"$log"

run() {
    if ! "$@" >>"$log" 2>&1; then
        cat "$log" >&2
        exit 1
    fi
}

ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1"

# shellcheck disable=SC2086
run openssl req -x509 $ec -nodes -days 3650 -sha256 \
    -subj "/CN=sluice test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem"

# shellcheck disable=SC2086
run openssl req -x509 $ec -nodes -days 3650 -sha256 \
    -subj "/CN=sluice other CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/other-ca.key" -out "$dir/other-ca.pem"

# shellcheck disable=SC2086
run openssl req -new $ec -nodes -subj "/CN=localhost" \
    -keyout "$dir/server.key" -out "$dir/server.csr"

cat >"$dir/server.ext" <<EOF
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EOF

run openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile "$dir/server.ext" -out "$dir/server.pem"

rm -f "$dir/server.csr" "$dir/server.ext" "$dir/ca.srl" "$dir/other-ca.key" "$log"
chmod 600 "$dir/ca.key" "$dir/server.key"
