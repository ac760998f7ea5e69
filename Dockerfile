# syntax=docker/dockerfile:1

# ---- build ------------------------------------------------------------------
FROM swift:6.0-bookworm AS build

RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update \
    && apt-get install -y --no-install-recommends libhiredis-dev libsodium-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /build

# Resolve dependencies first so that this layer is cached across source edits.
COPY Package.swift ./
RUN swift package resolve

# Tests/ is copied because the manifest declares test targets.
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product sessiond --static-swift-stdlib

# The binary is all there is to ship: the Lua scripts are compiled into it.
WORKDIR /staging
RUN cp "$(swift build --package-path /build -c release --show-bin-path)/sessiond" ./

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim

RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update \
    && apt-get install -y --no-install-recommends libhiredis0.14 libsodium23 ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --user-group --uid 10001 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin sessiond

WORKDIR /app
COPY --from=build /staging /app

USER sessiond:sessiond
ENV SESSIOND_HOST=0.0.0.0 \
    SESSIOND_PORT=8080
EXPOSE 8080

ENTRYPOINT ["/app/sessiond"]
