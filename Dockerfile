# wxlogin: a static binary on a distroless base (CA certificates, non-root).
#   docker build -t wxlogin --build-arg VERSION=$(git describe --always --dirty) .
#   docker run -p 2020:2020 -e WX_APPID=wx… -e WX_SECRET=… wxlogin
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod ./
COPY *.go ./
COPY internal ./internal
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.buildVersion=${VERSION}" -o /out/wxlogin .

# distroless/static holds CA certificates (HTTPS to WeChat fails without
# them), tzdata and a nonroot user, and no shell: -healthcheck replaces curl.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/wxlogin /wxlogin
# Numeric, so that Kubernetes can check runAsNonRoot (distroless "nonroot" is 65532).
USER 65532:65532
EXPOSE 2020
HEALTHCHECK --interval=30s --timeout=7s --start-period=5s --retries=3 CMD ["/wxlogin", "-healthcheck"]
ENTRYPOINT ["/wxlogin"]
