#!/bin/sh
# Generates the compose stack's passwords on first start into the `secrets` volume and
# keeps them afterwards, like the local stack does in .local/: no password is written in
# docker-compose.yml or in an image.
set -eu
umask 022
cd "${SECRETS_DIR:-/secrets}"
for name in postgres-password mqtt-admin-password mqtt-platform-password; do
  if [ ! -s "$name" ]; then
    # 24 random bytes, hex: safe in URLs and on command lines.
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$name.tmp"
    mv "$name.tmp" "$name"
    echo "generated $name"
  fi
done
# The postgres (uid 999) and mosquitto (uid 1883) server users read them.
chmod 0644 ./*-password
