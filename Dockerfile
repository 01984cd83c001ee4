# syntax=docker/dockerfile:1
# Rotor image: `docker build -t rotor .`
# Private builds that trust another license key:
#   docker build --build-arg ROTOR_LICENSE_PUBKEY="$(cat public.txt)" -t rotor .

# ---- build ---------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src
# Everything the workspace needs to compile (tests/ is a workspace member; migrations/ are
# embedded by sqlx::migrate!; openapi/ holds the committed document).
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY tests ./tests
COPY migrations ./migrations
COPY openapi ./openapi
# The web console as committed (scripts/console builds it; CI checks it is current).
COPY console/dist ./console/dist
ARG ROTOR_LICENSE_PUBKEY=""
# No database at build time: sqlx macros, if any, use a committed .sqlx/ cache.
ENV SQLX_OFFLINE=true
# Cache mounts keep the crate registry and target/ between builds; the binary is copied
# out of target/ in the same step. An empty ROTOR_LICENSE_PUBKEY means the vendor key.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    if [ -z "$ROTOR_LICENSE_PUBKEY" ]; then unset ROTOR_LICENSE_PUBKEY; fi \
    && cargo build --release --locked --bin rotor \
    && install -m 0755 target/release/rotor /usr/local/bin/rotor

# ---- runtime -------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home \
        --home-dir /app --shell /usr/sbin/nologin rotor
WORKDIR /app
COPY --from=builder /usr/local/bin/rotor /app/rotor
USER rotor
# The image has no PostgreSQL binaries: set DATABASE_URL (the embedded default of
# `rotor serve` is for running the binary directly on a machine).
ENV ROTOR_LISTEN=0.0.0.0:8080 ROTOR_LOG_FORMAT=json
EXPOSE 8080
# `rotor healthcheck` GETs http://127.0.0.1:8080/healthz (or --url) and exits non-zero
# unless it answers 2xx.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/app/rotor", "healthcheck"]
ENTRYPOINT ["/app/rotor"]
CMD ["serve"]
