# vectordb images. Two ways to build, same run-time image:
#
#   docker build -t vectordb .             # users: compiles everything in the
#                                          # `builder` stage (public images)
#   docker build --target prebuilt ...     # CI / offline: copies binaries built
#                                          # on the host from docker/bin/
#                                          # (scripts/docker-images.sh)
#
# The stages are in this order on purpose: Docker's legacy builder (no
# BuildKit) builds every stage up to the --target one, in file order, so
# `--target prebuilt` never touches the builder image or the network.
# Offline, pass `--build-arg RUNTIME_IMAGE=vectordb-base:bookworm`
# (docker/base/build-base.sh), which already holds every run-time library,
# so the apt step below is skipped.
#
# The binaries need glibc (bookworm's 2.36 or newer), OpenBLAS (libblas.so.3,
# liblapack.so.3), libgomp and libstdc++; FAISS itself is linked statically.

ARG RUNTIME_IMAGE=debian:bookworm-slim
ARG BUILDER_IMAGE=rust:1.95-bookworm

# ---------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime-base
# Run-time libraries, only when missing (the local base has them all).
RUN set -eu; need=""; \
    ldconfig -p | grep -q 'libblas\.so\.3 ' || need="$need libopenblas0-pthread"; \
    ldconfig -p | grep -q 'liblapack\.so\.3 ' || need="$need libopenblas0-pthread"; \
    ldconfig -p | grep -q 'libgomp\.so\.1 ' || need="$need libgomp1"; \
    ldconfig -p | grep -q 'libstdc++\.so\.6 ' || need="$need libstdc++6"; \
    command -v curl >/dev/null 2>&1 || need="$need curl"; \
    [ -s /etc/ssl/certs/ca-certificates.crt ] || need="$need ca-certificates"; \
    if [ -n "$need" ]; then \
      apt-get update; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    groupadd --system --gid 10001 vectordb; \
    useradd --system --uid 10001 --gid vectordb --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin vectordb; \
    mkdir -p /data /certs; \
    chown vectordb:vectordb /data /certs
COPY docker/entrypoint.sh /usr/local/bin/vectordb-entrypoint
# Ports: 15001 REST (gateway / standalone), 7947 meta-service HTTP (Raft +
# API), 7946/udp gossip, 7950/udp storage QUIC RPC, 7960 storage HTTP.
EXPOSE 15001 7947 7946/udp 7950/udp 7960
# Plain log lines (no ANSI colours) for `docker logs`; RUST_LOG filters them.
ENV NO_COLOR=1
USER vectordb
WORKDIR /data
VOLUME ["/data"]
ENTRYPOINT ["vectordb-entrypoint"]
# Default: everything in one process (REST on :15001, data in /data).
CMD ["vectordb", "standalone", "--listen-host", "0.0.0.0", "--data-dir", "/data/standalone"]

# ---------------------------------------------------------------------------
# Binaries built on the host (same Debian release as RUNTIME_IMAGE).
FROM runtime-base AS prebuilt
COPY docker/bin/ /usr/local/bin/

# ---------------------------------------------------------------------------
FROM ${BUILDER_IMAGE} AS builder
# What scripts/install-deps.sh installs for the build (FAISS: cmake >= 3.24,
# BLAS/LAPACK; the Rust image has g++ and libgomp).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cmake libopenblas-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
      -p storage-node -p meta-service -p gateway -p transport -p vectordb -p loadtest --bins \
 && mkdir -p /out \
 && for b in storage-node meta-service gateway certs vectordb loadtest; do \
      objcopy --strip-debug "target/release/$b" "/out/$b"; \
    done

# ---------------------------------------------------------------------------
# Default target: the run-time image with the binaries built above.
FROM runtime-base AS runtime
COPY --from=builder /out/ /usr/local/bin/
