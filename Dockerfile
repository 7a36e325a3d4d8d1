# Build: docker build -t repcue .
# Run:   docker run -e DATABASE_URL=… -e REPCUE_JWT_KEY_FILE=/keys/jwt.pem -v keys:/keys -p 8080:8080 repcue
# (deploy/compose.yaml wires PostgreSQL, the migration, the keys and the demo accounts.)
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/repcue ./cmd/repcue \
 && mkdir -p /out/keys

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/repcue /repcue
# /keys belongs to the non-root user, so a volume mounted there (new, empty)
# takes that owner and `repcue keygen` can write the keys into it.
COPY --from=build --chown=65532:65532 /out/keys /keys
EXPOSE 8080
# Numeric (distroless's nonroot), so Kubernetes' runAsNonRoot can check it.
USER 65532:65532
HEALTHCHECK --interval=10s --timeout=4s --start-period=10s --retries=3 CMD ["/repcue", "healthcheck"]
ENTRYPOINT ["/repcue"]
CMD ["serve"]
