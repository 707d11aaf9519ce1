# Builds a minimal kmetrics image: static binary on distroless, non-root.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd cmd
COPY pkg pkg
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /kmetrics ./cmd/kmetrics

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /kmetrics /kmetrics
USER 65534:65534
ENTRYPOINT ["/kmetrics"]
