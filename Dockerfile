# syntax=docker/dockerfile:1
# kube-autofix: `autofix serve`, the Alertmanager webhook receiver (docs/install.md).
#
#   docker build -t kube-autofix:0.1.0 .
#
# The image runs as uid/gid 65532 with a read-only root filesystem: the only writable paths are
# /var/lib/autofix (the SQLite store, GitOps clones, MLflow spool: a PersistentVolume) and /tmp
# (HOME, scratch: an emptyDir). Config goes to /etc/autofix/autofix.toml (a ConfigMap), secrets
# come from the environment or files under /etc/autofix (Secrets).

FROM rust:1.95-bookworm AS build
WORKDIR /src
# libgit2 and OpenSSL are vendored (built from source): they need perl, make and a C compiler,
# all present in the rust image.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p autofix \
    && install -D -m 0755 target/release/autofix /out/autofix

FROM debian:bookworm-slim
# CA roots for GitHub, the LLM provider and MLflow over HTTPS; nothing else is installed. An
# empty config file (the built-in defaults) lets a plain `docker run` start; Helm and kustomize
# mount the real one over it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 autofix \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin autofix \
    && install -d -o 65532 -g 65532 -m 0750 /var/lib/autofix \
    && install -d -m 0755 /etc/autofix \
    && install -m 0644 /dev/null /etc/autofix/autofix.toml
COPY --from=build /out/autofix /usr/local/bin/autofix
USER 65532:65532
ENV HOME=/tmp \
    AUTOFIX_CONFIG=/etc/autofix/autofix.toml
VOLUME ["/var/lib/autofix"]
EXPOSE 8080
ENTRYPOINT ["autofix"]
CMD ["serve"]
