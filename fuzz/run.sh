#!/usr/bin/env bash
# Coverage-guided fuzzing of the decoders that face the network or the
# disk, with AFL++ through cargo-afl (crates.io; stable Rust; no LLVM
# plugins, so no clang/llvm packages): the msgpack frame decoder
# (`frame`), the WAL record reader (`wal_record`), a replica's snapshot
# chunk reader (`snapshot_chunk`) and the gateway's JSON request models
# (`json_models`). See fuzz/src/lib.rs.
#
#   fuzz/run.sh                                   # each target 30 s (CI)
#   FUZZ_SECONDS=600 fuzz/run.sh                  # longer
#   FUZZ_TARGETS="frame wal_record" fuzz/run.sh   # some targets
#
# First use installs cargo-afl (which builds AFL++ from the C sources it
# ships: needs make and a C compiler) under target/fuzz/tools, so a second
# run starts at once. The harness is built with AFL's instrumentation into
# target/fuzz/build (its own directory: the flags differ from a normal
# build's). Each target starts from its committed seed corpus
# (fuzz/corpus/<target>/); AFL's findings go to target/fuzz/out/<target>/.
# Prints, per target, its executions, corpus growth, crashes and hangs;
# exits 1 on any crash or hang (the inputs are copied to
# target/fuzz/crashes/<target>/: put one in fuzz/regressions/<target>/ and
# `cargo test -p fuzz` replays it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${FUZZ_SECONDS:-30}
targets=${FUZZ_TARGETS:-frame wal_record snapshot_chunk json_models}
# cargo-afl and the `afl` crate (fuzz/Cargo.toml) must be the same version.
afl_version=0.18.2
tools=$root/target/fuzz/tools
# cargo-afl keeps AFL++ and its runtime object under $XDG_DATA_HOME/afl.rs.
export XDG_DATA_HOME=$tools/xdg
export PATH=$tools/bin:$PATH
jobs=()
[ -n "${FUZZ_JOBS:-}" ] && jobs=(-j "$FUZZ_JOBS")
started=$(date +%s)

host=$(rustc -vV | sed -n 's/^host: //p')
release=$(rustc -vV | sed -n 's/^release: //p')
commit=$(rustc -vV | sed -n 's/^commit-hash: //p')
afl_home=$XDG_DATA_HOME/afl.rs/rustc-$release-${commit:0:7}/afl.rs-$afl_version

if ! [ -x "$tools/bin/cargo-afl" ] || ! "$tools/bin/cargo-afl" afl --version 2>/dev/null | grep -q "$afl_version"; then
  echo "fuzz: installing cargo-afl $afl_version (builds AFL++) into target/fuzz/tools"
  CARGO_TARGET_DIR=$root/target/fuzz/tools-build \
    cargo install cargo-afl --version "$afl_version" --locked --root "$tools" "${jobs[@]}"
fi
# AFL++ and its runtime are built per rustc version (a new toolchain needs
# them again); the install above normally built them already.
if ! [ -x "$afl_home/afl/bin/afl-fuzz" ] || ! [ -f "$afl_home/afl-llvm/afl-compiler-rt.o" ]; then
  echo "fuzz: building AFL++ for rustc $release"
  cargo afl config --build --force
fi
installed=$(date +%s)

# `--target` keeps AFL's flags off build scripts and proc macros; the
# graph is built at -O0 except the crates the targets run, which the
# wrapper raises to -O3 (fuzz/rustc-wrapper.sh); no debug info.
echo "fuzz: building the harness (target/fuzz/build)"
CARGO_TARGET_DIR=$root/target/fuzz/build AFL_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_DEBUG=false \
  RUSTC_WRAPPER=$root/fuzz/rustc-wrapper.sh \
  cargo afl build --release --locked -p fuzz --features afl --bin fuzz-afl --target "$host" "${jobs[@]}"
bin=$root/target/fuzz/build/$host/release/fuzz-afl
built=$(date +%s)

stat() { sed -n "s/^$1 *: *//p" "$2"; }
failed=0
summary=$root/target/fuzz/summary.txt
: >"$summary"
for t in $targets; do
  out=$root/target/fuzz/out/$t
  rm -rf "$out"
  mkdir -p "$out"
  # No UI (CI logs), no CPU binding (the machine is shared), no core-dump
  # check (crashes are detected by signal all the same), quick calibration.
  # -t: a single input running over 1 s is a hang (the decoders take µs).
  # -m: a decoder allocating past 4 GiB of address space aborts (a crash).
  FUZZ_TARGET=$t AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 \
    AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_FAST_CAL=1 AFL_QUIET=1 \
    cargo afl fuzz -i "$root/fuzz/corpus/$t" -o "$out" -V "$seconds" -t 1000 -m 4096 -- "$bin" \
    >"$out/afl.log" 2>&1 || true
  stats=$out/default/fuzzer_stats
  if ! [ -f "$stats" ]; then
    echo "fuzz: $t: AFL++ did not run; the end of its log:" >&2
    tail -n 30 "$out/afl.log" >&2
    failed=1
    continue
  fi
  execs=$(stat execs_done "$stats")
  rate=$(stat execs_per_sec "$stats")
  corpus=$(stat corpus_count "$stats")
  seeds=$(find "$root/fuzz/corpus/$t" -type f | wc -l)
  crashes=$(stat saved_crashes "$stats")
  hangs=$(stat saved_hangs "$stats")
  line="fuzz: $t: $execs executions in $(stat run_time "$stats") s (${rate}/s), corpus $seeds -> $corpus, crashes $crashes, hangs $hangs"
  echo "$line" | tee -a "$summary"
  if [ "${crashes:-0}" != 0 ] || [ "${hangs:-0}" != 0 ]; then
    failed=1
    keep=$root/target/fuzz/crashes/$t
    mkdir -p "$keep"
    cp "$out"/default/crashes/id* "$out"/default/hangs/id* "$keep"/ 2>/dev/null || true
    echo "fuzz: $t: inputs in ${keep#"$root"/}; reproduce with FUZZ_TARGET=$t $bin < FILE," >&2
    echo "      then copy one to fuzz/regressions/$t/ (cargo test -p fuzz replays it)" >&2
  fi
done
done_at=$(date +%s)
echo "fuzz: install $((installed - started)) s, build $((built - installed)) s, fuzzing $((done_at - built)) s, total $((done_at - started)) s" | tee -a "$summary"
exit "$failed"
