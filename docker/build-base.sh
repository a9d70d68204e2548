#!/bin/sh
# A local base image for `make test-container`, where no image registry is reachable:
# Debian bookworm from debootstrap, with Python and the system tools the image needs, and this
# machine's pip settings and CA bundle so that `pip install` inside `docker build` reaches the
# package index. Real-world builds use the Dockerfile's default base (python:3.12-slim).
set -eu
name=${1:-linkshaper-base:bookworm}
if docker image inspect "$name" >/dev/null 2>&1; then
    echo "base image $name exists"
    exit 0
fi
dir=$(mktemp -d /tmp/linkshaper-base.XXXXXX)
trap 'rm -rf "$dir"' EXIT
debootstrap --variant=minbase \
    --include=python3,python3-venv,iproute2,ethtool,iperf3,iputils-ping,procps,ca-certificates \
    bookworm "$dir" http://deb.debian.org/debian >/dev/null
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$dir/etc/pip.conf"
cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
tar -C "$dir" -c . | docker import - "$name" >/dev/null
echo "built base image $name"
