#!/bin/sh
# Writes a throw-away CA and two server certificates into $1 for the TLS
# unit tests: good.crt (SAN DNS:localhost, IP:127.0.0.1) and wrong.crt
# (SAN DNS:wrong.example only), both signed by ca.crt, P-256 keys.
set -e
cd "$1"

cat > ca.cnf <<'CNF'
[req]
distinguished_name = dn
x509_extensions = v3_ca
prompt = no
[dn]
CN = sluice test CA
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
CNF

openssl req -x509 -config ca.cnf -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout ca.key -out ca.crt -days 2 2>/dev/null

leaf() {
    cat > "$1.ext" <<CNF
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $2
CNF
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$1.key" -out "$1.csr" -subj "/CN=$3" 2>/dev/null
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
        -out "$1.crt" -days 2 -extfile "$1.ext" 2>/dev/null
}

leaf good "DNS:localhost, IP:127.0.0.1" localhost
leaf wrong "DNS:wrong.example" wrong.example
