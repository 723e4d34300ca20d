#!/bin/sh
# deploy/build.sh OUTPUT [VERSION]: the one davmail build used by the
# Dockerfile and by scripts/deploy-check.sh, so the binary checked natively
# is built exactly as the image's is: static (no cgo, so it runs on
# distroless/static), reproducible paths, stripped, version stamped.
set -eu
out=${1:?usage: deploy/build.sh OUTPUT [VERSION]}
version=${2:-devel}
CGO_ENABLED=0 exec go build -trimpath -buildvcs=false \
	-ldflags "-s -w -X main.version=${version}" \
	-o "$out" ./cmd/davmail
