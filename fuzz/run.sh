#!/usr/bin/env bash
# Coverage-guided fuzzing of libsession with libFuzzer, on the stable toolchain.
#
#   bash fuzz/run.sh smoke              every target for FUZZ_SMOKE_RUNS (default 20000)
#                                       inputs with a fixed seed (at most
#                                       FUZZ_SMOKE_SECS, 30): part of tests/run_all.sh
#   bash fuzz/run.sh run [TARGET...]    each target (default: all) for FUZZ_SECS
#                                       (default 600) s, one after the other
#   bash fuzz/run.sh list               the targets
#   bash fuzz/run.sh build              only build them
#
# Targets (bodies in fuzz/src/lib.rs): config, id, cookie, file_format,
# sealed_record, json_ops, c_api.
#
# Builds fuzz/ in release with SanitizerCoverage (stable -C flags) and, unless
# FUZZ_SANITIZER=none, AddressSanitizer (-Zsanitizer=address, enabled on the
# stable compiler with RUSTC_BOOTSTRAP=1, as cargo-fuzz does). Each run starts
# from the seed corpus fuzz/corpus/TARGET and grows a working corpus in
# target/fuzz/corpus/TARGET; a crash is saved in target/fuzz/artifacts/TARGET/
# and fails the run. Copy a crash into fuzz/regressions/TARGET/: the library's
# `cargo test` (tests/fuzz_replay.rs) replays it from then on. Extra arguments
# for libFuzzer go in FUZZ_ARGS (for example FUZZ_ARGS="-jobs=2 -workers=2").
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(config id cookie file_format sealed_record json_ops c_api)
host=$(rustc -vV | sed -n 's/^host: //p')
out=target/fuzz

build() {
  local flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
  flags+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters"
  flags+=" -Cllvm-args=-sanitizer-coverage-pc-table"
  flags+=" -Cllvm-args=-sanitizer-coverage-trace-compares"
  flags+=" --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
  if [ "${FUZZ_SANITIZER:-address}" = address ]; then
    flags+=" -Zsanitizer=address -Cunsafe-allow-abi-mismatch=sanitizer"
    export RUSTC_BOOTSTRAP=1
  fi
  echo "==> building the fuzz targets ($host, sanitizer: ${FUZZ_SANITIZER:-address})"
  # --target keeps RUSTFLAGS off build scripts and proc macros.
  RUSTFLAGS="$flags" CARGO_TARGET_DIR="$out/build" \
    cargo build --release --manifest-path fuzz/Cargo.toml --target "$host" --bins
}

# run TARGET SECONDS [EXTRA...]: prints libFuzzer's final stats; fails on a crash.
run_one() {
  local target=$1 secs=$2
  shift 2
  local bin="$out/build/$host/release/$target"
  local work="$out/corpus/$target" artifacts="$out/artifacts/$target"
  local scratch
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/session-fuzz.XXXXXX")
  # The smoke run starts from the committed inputs only, in a fresh work corpus.
  [ -z "${FUZZ_FRESH:-}" ] || work="$scratch/corpus"
  mkdir -p "$work" "$artifacts"
  echo "==> fuzz $target for ${secs}s"
  local log="$out/$target.log" status=0
  # The targets' file stores live in the scratch directory, removed afterwards.
  # shellcheck disable=SC2086
  TMPDIR="$scratch" ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}" "$bin" \
    "$work" "fuzz/corpus/$target" "fuzz/regressions/$target" \
    -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 "$@" ${FUZZ_ARGS:-} \
    >"$log" 2>&1 || status=$?
  rm -rf "$scratch"
  grep -E '^#[0-9]+ +DONE|^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" || true
  grep -E 'cov: [0-9]+' "$log" | tail -n 1 | sed 's/^/    last status: /' || true
  if [ "$status" -ne 0 ]; then
    echo "!! $target FAILED (exit $status); the input is in $artifacts/, the log in $log:"
    grep -E -A 30 'panicked|ERROR: (AddressSanitizer|libFuzzer)|SUMMARY' "$log" | head -n 60
    return 1
  fi
}

case "${1:-}" in
  build)
    build
    ;;
  list)
    printf '%s\n' "${TARGETS[@]}"
    ;;
  smoke)
    build
    failed=0
    # A fixed seed, a fixed number of runs and a fresh work corpus: the smoke run
    # is the same every time, so the suite never fails by chance; `run` explores
    # at random.
    for t in "${TARGETS[@]}"; do
      FUZZ_FRESH=1 run_one "$t" "${FUZZ_SMOKE_SECS:-30}" -seed=1 -runs="${FUZZ_SMOKE_RUNS:-20000}" || failed=1
    done
    [ "$failed" -eq 0 ] && echo "==> fuzz smoke run: ${#TARGETS[@]} targets, no crash"
    exit "$failed"
    ;;
  run)
    shift
    [ "$#" -gt 0 ] || set -- "${TARGETS[@]}"
    for t in "$@"; do
      printf '%s\n' "${TARGETS[@]}" | grep -qx "$t" || { echo "unknown target: $t" >&2; exit 2; }
    done
    build
    failed=0
    for t in "$@"; do
      run_one "$t" "${FUZZ_SECS:-600}" || failed=1
    done
    exit "$failed"
    ;;
  *)
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
