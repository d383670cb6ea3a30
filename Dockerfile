# syntax=docker/dockerfile:1
# Build: bundle the service and its commands with the full dependency set (src/cli/build.ts).
FROM node:24.21.0-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY routes ./routes
COPY migrations ./migrations
RUN npm run build

# Production dependencies only: the bundles load a few packages from node_modules (pino-pretty, the logger's
# worker-thread scripts, Swagger UI's static files). The embedded PostgreSQL binaries are not needed in a
# container: containers always get DATABASE_URL.
FROM node:24.21.0-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund && npm cache clean --force

FROM node:24.21.0-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
USER node
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# tini reaps zombies and forwards SIGTERM, so the service drains requests before exiting.
ENTRYPOINT ["/usr/bin/tini", "--"]
# Release step (run once per deploy, before the new version takes traffic):
#   docker run --rm -e DATABASE_URL=… -e MIGRATE_ON_START=false <image> node dist/src/cli/migrate.js
CMD ["node", "dist/src/server.js"]
