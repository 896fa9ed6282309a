#!/usr/bin/env bash
# RUSTC_WRAPPER for fuzz/run.sh's build: `cargo afl build` compiles every
# crate with AFL's instrumentation at one optimisation level. Only the
# decoders and what they call run under the fuzzer; the rest of the graph
# (tokio, axum, hyper, quinn, rustls, ...) is linked in but never executed
# by the targets. So run.sh builds everything at AFL_OPT_LEVEL=0 (quick)
# and this wrapper raises the crates the targets execute to -O3 (fast
# executions): the last `-C opt-level` on rustc's command line wins.
set -euo pipefail
rustc=$1
shift
crate=""
prev=""
for a in "$@"; do
  if [ "$prev" = "--crate-name" ]; then
    crate=$a
    break
  fi
  prev=$a
done
case "$crate" in
  protocol | transport | gateway | fuzz | fuzz_afl | serde_json | rmp | rmp_serde | serde | uuid | crc32c)
    exec "$rustc" "$@" -C opt-level=3
    ;;
  *)
    exec "$rustc" "$@"
    ;;
esac
