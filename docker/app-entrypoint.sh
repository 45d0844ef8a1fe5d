#!/bin/sh
# The app container: `npm start`'s supervisor pointed at the compose services instead of
# starting its own PostgreSQL, InfluxDB and Mosquitto. Connection settings are built here
# from the generated passwords so none is written in docker-compose.yml.
set -eu
secret() { cat "/secrets/$1"; }

export DATABASE_URL="postgresql://postgres:$(secret postgres-password)@postgres:5432/easysmart"
export INFLUX_URL="http://influxdb:8086"
export MQTT_URL="mqtt://mosquitto:1883"
export MQTT_ADMIN_USERNAME=admin
export MQTT_ADMIN_PASSWORD="$(secret mqtt-admin-password)"
export MQTT_PLATFORM_USERNAME=easysmart-platform
export MQTT_PLATFORM_PASSWORD="$(secret mqtt-platform-password)"

# As package.json's start script.
exec npx tsx --max-semi-space-size=64 --min-semi-space-size=64 local/start.ts
