#!/bin/sh
# First start of the compose broker: the dynamic-security file with the admin client (which
# may only use the $CONTROL API) and the platform client (rules emulator and IoT data-plane
# endpoint, devices/#), as local/services/mosquitto.ts sets them up for `npm start`, and the
# empty password file devices are appended to when they are registered through the API
# (the broker's device-auth plugin reads it). Runs a private broker on localhost for the
# dynsec commands; later starts find dynsec.json and change nothing. The directories can be
# moved by the environment (test/docker.test.ts runs this script outside a container).
set -eu
DATA=${MOSQUITTO_DATA_DIR:-/mosquitto/data}
DEVICES=${MOSQUITTO_DEVICES_DIR:-/mosquitto/devices}
SECRETS=${SECRETS_DIR:-/secrets}
DYNSEC_PLUGIN=${DYNSEC_PLUGIN:-/usr/lib/mosquitto_dynamic_security.so}
PORT=${INIT_PORT:-18830}
DYNSEC="$DATA/dynsec.json"
ADMIN_PASSWORD=$(cat "$SECRETS/mqtt-admin-password")
PLATFORM_PASSWORD=$(cat "$SECRETS/mqtt-platform-password")

# The broker's user (uid 1000 in the image, as the app's) owns its state; the app writes
# the password file, the broker reads it.
own() {
  if [ "$(id -u)" = 0 ]; then chown -R mosquitto:mosquitto "$@"; fi
}

if [ ! -e "$DEVICES/device-passwords" ]; then
  (umask 077 && : > "$DEVICES/device-passwords")
  own "$DEVICES"
fi

if [ -s "$DYNSEC" ]; then
  echo "dynsec.json exists: nothing to do"
  exit 0
fi

mosquitto_ctrl dynsec init "$DYNSEC.new" admin "$ADMIN_PASSWORD" >/dev/null
mv "$DYNSEC.new" "$DYNSEC"
CONF_FILE=$(mktemp)
cat > "$CONF_FILE" <<CONF
listener $PORT 127.0.0.1
allow_anonymous false
plugin $DYNSEC_PLUGIN
plugin_opt_config_file $DYNSEC
persistence false
CONF
own "$DATA"
mosquitto -c "$CONF_FILE" &
BROKER=$!
trap 'kill "$BROKER" 2>/dev/null || true; rm -f "$CONF_FILE"' EXIT

ctrl() {
  mosquitto_ctrl -h 127.0.0.1 -p "$PORT" -u admin -P "$ADMIN_PASSWORD" dynsec "$@"
}
for _ in $(seq 1 50); do
  ctrl getDefaultACLAccess >/dev/null 2>&1 && break
  sleep 0.1
done

ctrl createRole easysmart-platform
for acl in publishClientSend publishClientReceive subscribePattern unsubscribePattern; do
  ctrl addRoleACL easysmart-platform "$acl" 'devices/#' allow
done
ctrl createClient easysmart-platform -p "$PLATFORM_PASSWORD"
ctrl addClientRole easysmart-platform easysmart-platform

kill "$BROKER"
wait "$BROKER" || true
trap - EXIT
rm -f "$CONF_FILE"
own "$DATA"
echo "dynsec.json created with the admin and easysmart-platform clients"
