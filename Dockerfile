# gsai-load: multi-stage build; the runtime image holds only the binary (no Rust toolchain).
#   docker build -t gsai-load .
#   docker run --rm --env-file .env gsai-load --headless -u 10 -r 2 -t 1m
# See docs/distributed.md for the master/worker setup (docker-compose.yml, deploy/k8s/).
# Where no registry can be reached (no rust or debian image to pull), build the scratch image
# from the static binary instead: deploy/build-image.sh (deploy/scratch/Dockerfile).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The web UI and the HTML report are embedded from assets/ at compile time.
COPY assets ./assets
RUN cargo build --release --locked --bin gsai-load \
 && strip target/release/gsai-load

FROM debian:bookworm-slim
# ca-certificates: the system trust store, which gsai-load reads besides its built-in public roots
# (mount a company CA and pass --ca-cert, or add it to the store in a derived image).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 gsai \
 && useradd --uid 10001 --gid 10001 --no-log-init --create-home --home-dir /home/gsai gsai
COPY --from=build /src/target/release/gsai-load /usr/local/bin/gsai-load
# Numeric, so that Kubernetes' runAsNonRoot can check it without runAsUser.
USER 10001:10001
WORKDIR /home/gsai
# 8089: web UI (listens on 0.0.0.0 inside the container); 5557: master port for workers.
EXPOSE 8089 5557
ENTRYPOINT ["gsai-load"]
CMD ["--help"]
