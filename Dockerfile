# Switchyard in a container: built in one stage, run from a small image as an unprivileged user.
#   docker build -t switchyard .
#   docker run -p 8080:8080 -e SWITCHYARD__STORE__URL=postgres://... -e OPENAI_API_KEY=... switchyard
# Configuration comes from environment variables (SWITCHYARD__SECTION__KEY) or a file mounted at
# /etc/switchyard/switchyard.toml; see docs/config.md and docs/several-gateways.md.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p switchyard \
 && install -D -m 0755 target/release/switchyard /out/switchyard

FROM debian:bookworm-slim AS run
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 switchyard \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/switchyard --create-home switchyard
COPY --from=build /out/switchyard /usr/local/bin/switchyard
USER 10001:10001
WORKDIR /var/lib/switchyard
ENV SWITCHYARD__SERVER__LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["switchyard", "--config", "/etc/switchyard/switchyard.toml"]
CMD ["serve"]
