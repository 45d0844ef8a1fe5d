# The EasySmart app for docker-compose.yml: serverless-offline with the functions, the IoT
# rules emulator, the IoT data-plane endpoint and the dashboard, run by the same supervisor
# as `npm start` (local/start.ts). PostgreSQL, InfluxDB and Mosquitto are other services.
# test/docker.test.ts reproduces what this machine can of it (no Docker engine there).

# Build stage: the dashboard's static files (Vite is a development dependency and stays here).
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npx vite build dashboard

# The image: production dependencies only (those the supervisor, serverless-offline and the
# functions run with), the built dashboard, and an unprivileged user.
FROM node:22-bookworm-slim

# mosquitto-clients: the dynamic-security admin calls; mosquitto: what the supervisor
# checks for before it starts (docs/deploy.md, "Docker").
RUN apt-get update \
  && apt-get install -y --no-install-recommends ca-certificates mosquitto mosquitto-clients \
  && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
  && npm cache clean --force
COPY . .
COPY --from=build /app/dashboard/dist dashboard/dist
# The app's files stay root's and read-only to it; the data directory is its own, and so is
# /app itself, where the framework may create its working folders.
RUN mkdir -p /data \
  && chown node:node /data /app

USER node
ENV NODE_ENV=production \
    LOCAL_DATA_DIR=/data \
    API_PORT=3000 \
    DASHBOARD_PORT=3080 \
    BIND_HOST=0.0.0.0
EXPOSE 3000 3001 3080
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:3000/.well-known/jwks.json').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
ENTRYPOINT ["/app/docker/app-entrypoint.sh"]
