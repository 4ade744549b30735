# postern container image: a static binary on an empty (scratch) base.
# There is no CA bundle in the image on purpose: postern verifies providers
# against the Mozilla roots compiled into it (plus [trust] ca_files), so the
# image needs nothing but the binary. packaging_test.go builds the binary
# with the exact `go build` line below and checks every claim made here
# (or builds the image itself where a container runtime is running).
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t postern .
#   docker run -p 8080:8080 postern          # the sandbox: answers, sends nothing
#
# To send for real, mount your config over the built-in one (see
# deploy/container.toml, which is that built-in config):
#
#   docker run -p 8080:8080 -v /srv/postern/config.toml:/etc/postern/config.toml:ro \
#     -v postern-data:/var/lib/postern -e CLICKATELL_API_KEY postern

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# .dockerignore keeps .git out of the build context, so the version comes
# from here rather than from VCS stamping; pass `git describe` (above).
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/postern .
# scratch has no mkdir: the data_dir volume's mount point is made here.
RUN mkdir -p /out/data/postern

FROM scratch
COPY --from=build /out/postern /postern
# data_dir (ACME and self-signed certificates, the interception CA), owned
# by the user postern runs as, so the volume is writable.
COPY --from=build --chown=65532:65532 /out/data/ /var/lib/
COPY deploy/container.toml /etc/postern/config.toml
# An unprivileged, non-root user (the "nonroot" uid of distroless images).
USER 65532:65532
VOLUME ["/var/lib/postern"]
EXPOSE 8080
# The admin listener (/metrics, /healthz, /readyz) is on 127.0.0.1:9090 in
# the built-in config; set [server] admin_listen = "0.0.0.0:9090" in yours
# to scrape it from outside.
EXPOSE 9090
# No shell or curl in a scratch image: postern checks itself, at the
# admin_listen of the config it serves.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 CMD ["/postern", "health", "-config", "/etc/postern/config.toml"]
ENTRYPOINT ["/postern"]
CMD ["serve", "-config", "/etc/postern/config.toml"]
