# syntax=docker/dockerfile:1
# Mizuchi Uploadr container image: a static binary on a distroless base,
# running as a non-root user with a read-only root filesystem.
#
#   docker build -t mizuchi:dev --build-arg VERSION=$(git describe --tags --always) \
#                --build-arg COMMIT=$(git rev-parse --short=12 HEAD) .
#   docker run --rm -p 8080:8080 -e JWT_SECRET=... --read-only --tmpfs /tmp \
#              -v mizuchi-data:/var/lib/mizuchi mizuchi:dev
#
# See docs/DEPLOYMENT.md.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not invalidate the module cache layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
ARG TARGETOS=linux
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
        -o /out/mizuchi ./cmd/mizuchi
# Prepare the directories the final image mounts or writes, owned by the runtime user.
RUN mkdir -p /out/var/lib/mizuchi /out/tmp && chown 65532:65532 /out/var/lib/mizuchi /out/tmp \
    && chmod 1777 /out/tmp

# distroless/static: CA certificates, tzdata, /etc/passwd with "nonroot" (65532),
# no shell, no package manager. Pin it by digest in production builds.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mizuchi /usr/local/bin/mizuchi
COPY --from=build --chown=65532:65532 /out/var/lib/mizuchi /var/lib/mizuchi
COPY --from=build /out/tmp /tmp
COPY deploy/container/config.yaml /etc/mizuchi/config.yaml
ENV MIZUCHI_CONFIG=/etc/mizuchi/config.yaml \
    TMPDIR=/tmp
USER 65532:65532
# S3 API and Prometheus metrics.
EXPOSE 8080 9090
# Objects of filesystem buckets, and spooled parts (upload.spool_dir defaults to $TMPDIR).
VOLUME ["/var/lib/mizuchi", "/tmp"]
HEALTHCHECK --interval=30s --timeout=5s CMD ["/usr/local/bin/mizuchi", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/mizuchi"]
CMD ["serve"]
