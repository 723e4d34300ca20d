# davmail gateway image: multi-stage, static binary on distroless.
#
#   docker build -t davmail .          (docker-compose.yml does this)
#   docker build --build-arg VERSION=v1.0.0 -t davmail:v1.0.0 .
#
# No Docker engine runs on the project's machines: scripts/deploy-check.sh
# runs this file's build step (deploy/build.sh) natively, starts the
# binary with this file's ENV and probes it with the HEALTHCHECK command.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
RUN sh deploy/build.sh /out/davmail "${VERSION}" \
 && /out/davmail version \
 && mkdir -p /out/var/lib/davmail /out/srv/mail

# distroless/static: no shell, no package manager, ~2 MiB; the binary
# is static (CGO_ENABLED=0 in deploy/build.sh).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/davmail /davmail
# uid/gid 5000 ("vmail") owns the mail: Postfix delivers as it
# (deploy/postfix/main.cf virtual_uid_maps) and Dovecot reads as it
# (deploy/dovecot/dovecot.conf userdb). New named volumes take these
# directories' ownership.
COPY --from=build --chown=5000:5000 /out/var/lib/davmail /var/lib/davmail
COPY --from=build --chown=5000:5000 /out/srv/mail /srv/mail
USER 5000:5000
ENV DAVMAIL_LISTEN=:8080 \
    DAVMAIL_DATA=/var/lib/davmail \
    DAVMAIL_MAILDIR_ROOT=/srv/mail \
    DAVMAIL_LOG_FORMAT=json
VOLUME ["/var/lib/davmail", "/srv/mail"]
EXPOSE 8080
# 'davmail healthcheck' probes /healthz at the address the settings above
# give (no curl in distroless). start-period: the first start builds the
# index of existing mail before /readyz turns green, not /healthz.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
  CMD ["/davmail", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/davmail"]
CMD ["serve"]
