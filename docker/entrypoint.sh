#!/bin/sh
# Entry point of the vectordb images: runs the given command (storage-node,
# meta-service, gateway, certs, vectordb, loadtest). One convenience for the
# storage node in a container: gossip (chitchat) must advertise an IP
# address, which a container only knows at run time, so when GOSSIP_LISTEN
# binds a wildcard address and GOSSIP_ADVERTISE is unset, this container's
# own address (its hostname in /etc/hosts) is advertised on the same port.
set -eu
if [ -n "${GOSSIP_LISTEN:-}" ] && [ -z "${GOSSIP_ADVERTISE:-}" ]; then
  case "$GOSSIP_LISTEN" in
    0.0.0.0:* | "[::]:"*)
      ip=$(getent hosts "$(cat /etc/hostname)" | awk '{ print $1; exit }')
      [ -n "$ip" ] || ip=$(hostname -i | awk '{ print $1 }')
      GOSSIP_ADVERTISE="$ip:${GOSSIP_LISTEN##*:}"
      export GOSSIP_ADVERTISE
      ;;
  esac
fi
exec "$@"
