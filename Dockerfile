# Build: docker build -t repcue .   Run: docker run -e DATABASE_URL=… -p 8080:8080 repcue
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/repcue ./cmd/repcue

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/repcue /repcue
EXPOSE 8080
USER nonroot
ENTRYPOINT ["/repcue"]
CMD ["serve"]
