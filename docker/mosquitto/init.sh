#!/bin/sh
# First start of the compose broker: the dynamic-security file with the admin client (which
# may only use the $CONTROL API) and the platform client (rules emulator and IoT data-plane
# endpoint, devices/#), as local/services/mosquitto.ts sets them up for `npm start`. Devices
# get their own clients later, through the API. Runs a private broker on localhost for the
# dynsec commands; later starts find dynsec.json and change nothing.
set -eu
DATA=/mosquitto/data
DYNSEC="$DATA/dynsec.json"
ADMIN_PASSWORD=$(cat /secrets/mqtt-admin-password)
PLATFORM_PASSWORD=$(cat /secrets/mqtt-platform-password)
PORT=18830

if [ -s "$DYNSEC" ]; then
  echo "dynsec.json exists: nothing to do"
  exit 0
fi

mosquitto_ctrl dynsec init "$DYNSEC.new" admin "$ADMIN_PASSWORD" >/dev/null
mv "$DYNSEC.new" "$DYNSEC"
cat > /tmp/init.conf <<CONF
listener $PORT 127.0.0.1
allow_anonymous false
plugin /usr/lib/mosquitto_dynamic_security.so
plugin_opt_config_file $DYNSEC
persistence false
CONF
chown -R mosquitto:mosquitto "$DATA"
mosquitto -c /tmp/init.conf &
BROKER=$!
trap 'kill "$BROKER" 2>/dev/null || true' EXIT

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
chown -R mosquitto:mosquitto "$DATA"
echo "dynsec.json created with the admin and easysmart-platform clients"
