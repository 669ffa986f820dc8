# hushdns: DNS sinkhole for home networks.
#
#   docker build -t hushdns .
#   docker run -d --name hushdns -p 53:53/udp -p 53:53/tcp -p 8080:8080 -v hushdns-data:/data hushdns
#
# Multi-arch (Raspberry Pi OS 64-bit is linux/arm64, 32-bit is linux/arm/v7):
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 -t REGISTRY/hushdns:TAG --push .
# See docs/docker.md for the details (QEMU, build time of the native module under emulation).
#
# Debian slim, not Alpine: better-sqlite3 is a native module built against glibc.
# Node 24 and later publish no 32-bit ARM builds, so linux/arm/v7 (Raspberry Pi OS 32-bit, Pi 2/3)
# gets Node 22, the last LTS line with arm/v7 images (supported until April 2027); every other
# platform gets the current LTS. TARGETARCH (amd64, arm64, arm) is predefined by BuildKit for each
# platform built; declaring it here would shadow that value. Builders without it (buildah 1.28,
# DOCKER_BUILDKIT=0) need --build-arg TARGETARCH=amd64|arm64|arm.
ARG NODE_VERSION=26
ARG DEBIAN_RELEASE=trixie
ARG NODE_VERSION_ARM32=22
ARG DEBIAN_RELEASE_ARM32=bookworm

FROM node:${NODE_VERSION}-${DEBIAN_RELEASE}-slim AS node-amd64
FROM node:${NODE_VERSION}-${DEBIAN_RELEASE}-slim AS node-arm64
FROM node:${NODE_VERSION_ARM32}-${DEBIAN_RELEASE_ARM32}-slim AS node-arm

# ---- build: compiler toolchain, all dependencies, TypeScript -> dist/ --------------------------
FROM node-${TARGETARCH} AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary matches the platform (arm/v7 often).
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 make g++ \
    && rm -rf /var/lib/apt/lists/*
# Dependencies first: this layer is reused as long as package*.json do not change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build \
    && npm prune --omit=dev --no-audit --no-fund \
    && rm -rf dist/bench \
    && find dist -name '*.map' -delete

# ---- runtime: production dependencies, dist/, the bundled lists and the dashboard only ----------
FROM node-${TARGETARCH} AS runtime
ENV NODE_ENV=production \
    HUSHDNS_DATA_DIR=/data
WORKDIR /app
# Port 53 as the unprivileged user `node` (uid 1000 in the node images): the node binary gets the
# one capability it needs. Docker's default capability set includes NET_BIND_SERVICE, so this works
# with host networking too; with bridge networking Docker also sets
# net.ipv4.ip_unprivileged_port_start=0 inside the container (see compose.yaml). setcap is removed
# again afterwards so the image carries no extra tools.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libcap2-bin \
    && setcap cap_net_bind_service=+ep "$(readlink -f "$(command -v node)")" \
    && apt-get purge -y --auto-remove libcap2-bin \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data \
    && chown node:node /data
# package.json is needed at run time: it marks the package root and carries the version.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/lists ./lists
# The dashboard's static files are read from the package root, not from dist/.
COPY --from=build /app/server/dashboard ./server/dashboard
RUN chmod 755 dist/cli.js && ln -s /app/dist/cli.js /usr/local/bin/hushdns

USER node
VOLUME /data
# DNS over UDP and TCP, then the HTTP API (health, why, metrics).
EXPOSE 53/udp 53/tcp 8080
# `hushdns health` reads the same HUSHDNS_* environment as the server, so it checks the addresses
# the server really listens on. The first start compiles the bundled lists: allow a minute on a Pi.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["node", "/app/dist/cli.js", "health"]
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["serve"]
