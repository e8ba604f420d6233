# syntax=docker/dockerfile:1
#
# squall in a container: the image the Kubernetes manifests in deploy/kubernetes/ run.
#
#   docker build -t squall:latest .
#   docker run --rm squall:latest run /scenarios/quickstart.yaml --out /tmp/reports
#
# The binary links glibc dynamically, so the builder and the runtime are the same Debian
# release (bookworm). docs/distributed.md says what was and was not checked of this file.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# cargo reads the whole manifest before it builds anything, and Cargo.toml names a bench
# target (`[[bench]] name = "shim"`): without benches/shim.rs it stops there. The test
# (`[[test]]`) and examples/ need not be here to build the binary.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
# The cache mounts keep the registry and the build directory between builds; the binary
# is copied out in the same step, because a cache mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin squall \
    && cp target/release/squall /usr/local/bin/squall

FROM debian:bookworm-slim
# ca-certificates: `wss://` targets are checked against the system's roots
# (rustls-native-certs reads /etc/ssl/certs).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed numeric id, so a pod's `runAsUser`/`fsGroup` and a mounted volume's owner can
# name it without a /etc/passwd lookup.
RUN groupadd --gid 10001 squall \
    && useradd --uid 10001 --gid 10001 --home-dir /home/squall --create-home \
       --shell /usr/sbin/nologin squall
COPY --from=build /usr/local/bin/squall /usr/local/bin/squall
COPY scenarios /scenarios
USER 10001:10001
# `report.dir` defaults to `reports/`, relative to here: a directory this user may write.
WORKDIR /home/squall
ENTRYPOINT ["squall"]
CMD ["--help"]
