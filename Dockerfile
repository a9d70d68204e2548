# linkshaper in a container, as the seed's image: the container's interface on
# $SYNTHETIC_NETWORK is taken over and shaped; the HTTP API listens on port 80; `tui` attaches.
#
#   docker build -t linkshaper .
#   docker network create synthetic-network --subnet=198.18.100.0/24
#   docker create --cap-add NET_ADMIN --cap-add NET_RAW --env SYNTHETIC_NETWORK=198.18.100.0/24 \
#       --publish 3000:80 --name app --tty --interactive --env ENTRY=bash linkshaper
#   docker network connect synthetic-network app && docker start --attach --interactive app
#   docker exec -it app tui
ARG BASE=python:3.12-slim
FROM ${BASE}

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    TERM=xterm-256color \
    COLORTERM=truecolor \
    PATH=/opt/venv/bin:$PATH

# System tools: ip, ethtool, ping, iperf3, and what the seed's image had and its README uses
# inside it (tcpdump, curl, wget, netstat, lsof); skipped when the base has them all.
RUN missing=""; \
    for tool in ip ethtool ping iperf3 tcpdump curl wget netstat lsof; do \
        command -v "$tool" >/dev/null || missing=1; \
    done; \
    if [ -n "$missing" ]; then \
        apt-get update && apt-get install -y --no-install-recommends \
            iproute2 ethtool iputils-ping iperf3 procps ca-certificates \
            tcpdump curl wget net-tools lsof && \
        rm -rf /var/lib/apt/lists/*; \
    fi

# Images derived FROM the seed's could rely on Node.js, which it was based on: --build-arg NODE=1.
ARG NODE=
RUN if [ -n "$NODE" ]; then \
        apt-get update && apt-get install -y --no-install-recommends nodejs && \
        rm -rf /var/lib/apt/lists/*; \
    fi

COPY pyproject.toml README.md /opt/linkshaper/
COPY engine /opt/linkshaper/engine
COPY shaper_tui /opt/linkshaper/shaper_tui
RUN python3 -m venv /opt/venv && \
    /opt/venv/bin/pip install --no-cache-dir /opt/linkshaper && \
    mkdir -p /opt/etc /opt/bin /opt/lib /run/linkshaper && \
    printf '#!/bin/sh\nexec /opt/venv/bin/python -P -m engine.cli.rush "$@"\n' > /opt/lib/rush && \
    chmod 755 /opt/lib/rush

EXPOSE 80
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/venv/bin/python", "-P", "-m", "engine.deploy.container"]
