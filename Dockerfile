# syntax=docker/dockerfile:1
# Ponte in a container: a static binary (pure-Go SQLite, no cgo) on distroless,
# run as an unprivileged user. Build: docker build -t ponte .
# Run (one node, SQLite in the /data volume):
#   docker run -p 8080:8080 -v ponte-data:/data -e PONTE_ISSUER=https://login.example.it \
#     -e PONTE_MASTER_KEY=… ponte
# See deploy/ for a single-node and a PostgreSQL + Redis + nginx setup.

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w" -o /out/ponte ./cmd/ponte \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ponte /ponte
# The SQLite file (ponte.db) and a dev key file live here; PostgreSQL nodes keep nothing.
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
USER 65532:65532
ENV PONTE_ADDR=0.0.0.0:8080 \
    PONTE_LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/data"]
# /readyz on loopback; exits 1 when the node is not ready (no curl in the image).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["/ponte", "healthcheck"]
ENTRYPOINT ["/ponte"]
CMD ["serve"]
