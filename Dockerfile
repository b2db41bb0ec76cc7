# syntax=docker/dockerfile:1
# The contactsync image the Kubernetes manifests in deploy/kubernetes/ run. Build and push with
#
#   docker build -t registry.example.com/contactsync:0.1.0 .
#   docker push registry.example.com/contactsync:0.1.0
#
# (use your registry; the tag is the crate version, and tests/deploy.rs checks that the manifests
# name the same image). The binary carries its defaults (match model, nickname table): the image
# holds nothing else of the checkout.

# Build stage: the same toolchain and Debian release as the runtime stage, so the binary's glibc
# matches.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin contactsync \
    && install -m 0755 target/release/contactsync /usr/local/bin/contactsync

# Runtime stage: glibc, CA roots for HTTPS to GHL and BulkSMS, and one unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 contactsync \
    && useradd --system --uid 10001 --gid contactsync --home-dir /var/lib/contactsync \
       --shell /usr/sbin/nologin contactsync \
    && install -d -o contactsync -g contactsync -m 0700 /var/lib/contactsync
COPY --from=build /usr/local/bin/contactsync /usr/local/bin/contactsync
USER 10001:10001
WORKDIR /var/lib/contactsync
# Runs, cursors, tokens and the load ledger: must outlive the container.
VOLUME ["/var/lib/contactsync"]
ENTRYPOINT ["/usr/local/bin/contactsync"]
CMD ["--help"]
