# The operator's image: built with the pinned Rust toolchain, run from distroless as non-root.
# (No container engine runs on the project machines; this file is kept conventional and is
# not built in CI.)
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crd crd
COPY operator operator
COPY cli cli
COPY tests tests
RUN cargo build --release --locked -p velero-debug-operator \
 && cp target/release/velero-debug-operator /velero-debug-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /velero-debug-operator /usr/local/bin/velero-debug-operator
USER 65532:65532
# /spool is an emptyDir in the chart; the root filesystem stays read-only.
ENV SPOOL_DIR=/spool
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/velero-debug-operator"]
