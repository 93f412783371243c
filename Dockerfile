# syntax=docker/dockerfile:1
# paygate in a container: one image for every subcommand (all, serve, worker, migrate,
# webhook-receiver, merchant ...). Build with BuildKit (the default of Docker 23+ and of
# `docker compose`); its cache mounts keep the cargo registry and target/ between builds, so a
# source change recompiles paygate only, not its dependencies.

FROM rust:1.95-slim-trixie AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY bench bench
COPY migrations migrations
# target/ is a cache mount (not in the layer), so the binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin paygate \
    && install -D -m 0755 target/release/paygate /out/paygate \
    && mkdir -p /out/data

FROM debian:trixie-slim
# CA roots for outgoing HTTPS (webhooks); the build image already has them, so no apt here.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/paygate /usr/local/bin/paygate
WORKDIR /var/lib/paygate
# The default DATABASE_URL (sqlite://./data/paygate.db) lands here; mount a volume on it to keep
# it. With PostgreSQL (DATABASE_URL=postgres://...) nothing is written.
COPY --from=build --chown=10001:10001 /out/data ./data
USER 10001:10001
ENV HOST=0.0.0.0 \
    RECEIVER_LISTEN=0.0.0.0:4000
# API, dashboard, checkout, webhook-receiver.
EXPOSE 8000 3000 3001 4000
# GET http://127.0.0.1:$PORT/health must answer 200 (the image has no curl). It probes the API,
# so `worker`, `migrate` and `webhook-receiver` containers should turn it off.
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s --retries=3 \
    CMD ["paygate", "healthcheck"]
ENTRYPOINT ["paygate"]
CMD ["all"]
