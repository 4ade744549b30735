# postern container image: a static binary on an empty (scratch) base.
# There is no CA bundle in the image on purpose: postern verifies providers
# against the Mozilla roots compiled into it (plus [trust] ca_files), so the
# image needs nothing but the binary. main_test.go builds the binary with the
# exact flags of the `go build` line below and proves that.
#
#   docker build -t postern .
#   docker run -p 8080:8080 -v /etc/postern:/etc/postern:ro -e CLICKATELL_API_KEY postern

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/postern .

FROM scratch
COPY --from=build /out/postern /postern
COPY config.toml /etc/postern/config.toml
# An unprivileged, non-root user (the "nonroot" uid of distroless images).
USER 65532:65532
EXPOSE 8080
# The admin listener (/metrics, /healthz, /readyz) is on 127.0.0.1:9090 by
# default; set [server] admin_listen = "0.0.0.0:9090" to scrape it from outside.
EXPOSE 9090
# No shell or curl in a scratch image: postern checks itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 CMD ["/postern", "health"]
ENTRYPOINT ["/postern"]
CMD ["serve", "-config", "/etc/postern/config.toml"]
