#!/usr/bin/env bash
# GPU check for the CUDA backend (issue 3). Runs on the lent H200 machine: CUDA 13, CMake,
# ninja, a host compiler, but none of our Debian -dev packages and no network.
#   here:   tests/bench/gpu_fetch_debs.sh            (fills .debs/, gitignored)
#   device: run  tests/bench/gpu_check.sh   with carry [".debs"], timeout_s ~420
# Steps: unpack the .debs into a private prefix, configure with -DFRESHREC_CUDA=ON and
# without the serving layer (hiredis, librdkafka, cpp-httplib: not carried, not needed
# here), build the CUDA tests + gpu_bench (+ freshrec-train), run the tests, gpu_bench on
# ML-20M size and 10x, then the nightly job end to end on a generated 20M-event log (when
# time allows).
# The table comes last. Everything printed is also saved under $OUT when it is set.
# Env: BUILD_DIR (default build-gpu), SCALES (default 1,10), BENCH_ITERS (5), E2E (1/0),
#      JOBS (nproc).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OUT_DIR=${OUT:-/tmp/freshrec-gpu-check}
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/gpu_check.log"
exec > >(tee "$LOG") 2>&1
T0=$(date +%s)
elapsed() { echo $(( $(date +%s) - T0 )); }
step() { echo; echo "=== [$(elapsed)s] $*"; }

BUILD_DIR=${BUILD_DIR:-build-gpu}
SCALES=${SCALES:-1,10}
BENCH_ITERS=${BENCH_ITERS:-5}
E2E=${E2E:-1}
JOBS=${JOBS:-$(nproc)}

export PATH="/usr/local/cuda/bin:$PATH"  # in case nvcc is installed but not on PATH
step "device"
grep -E '^PRETTY_NAME' /etc/os-release 2>/dev/null || true
g++ --version 2>&1 | head -1 || true
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv 2>&1 || echo "nvidia-smi: not available"
nvcc --version 2>&1 | tail -1 || true
cmake --version | head -1

step "dependencies (.debs -> private prefix)"
PREFIX=/tmp/freshrec-prefix
if ls .debs/*.deb >/dev/null 2>&1; then
  rm -rf "$PREFIX" && mkdir -p "$PREFIX"
  for deb in .debs/*.deb; do
    if command -v dpkg >/dev/null; then
      dpkg -x "$deb" "$PREFIX"
    else  # a .deb is an ar archive holding data.tar.*
      ar p "$deb" "$(ar t "$deb" | grep '^data.tar')" | tar -x -a -C "$PREFIX" -f - 2>/dev/null ||
        ar p "$deb" "$(ar t "$deb" | grep '^data.tar')" | tar -x --xz -C "$PREFIX" -f -
    fi
  done
  echo "unpacked $(ls .debs/*.deb | wc -l) packages into $PREFIX"
else
  echo "no .debs/ here: using the system's packages (run tests/bench/gpu_fetch_debs.sh on the dev machine)"
fi
ARCH_LIB="$PREFIX/usr/lib/x86_64-linux-gnu"
export LD_LIBRARY_PATH="$ARCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Debian keeps opensslconf.h/configuration.h in the multiarch include dir.
export CPATH="$PREFIX/usr/include:$PREFIX/usr/include/x86_64-linux-gnu${CPATH:+:$CPATH}"

step "configure ($BUILD_DIR, CUDA ON)"
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFRESHREC_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DCMAKE_PREFIX_PATH="$PREFIX/usr;$ARCH_LIB/cmake;$PREFIX/usr/share" \
  -DOPENSSL_ROOT_DIR="$PREFIX/usr" -DFRESHREC_BUILD_BENCH=ON -DFRESHREC_BUILD_TESTS=ON \
  -DFRESHREC_BUILD_SERVING=OFF \
  || { echo "gpu_check: configure failed"; exit 1; }

step "build"
targets="cuda_kernels_test cuda_backend_parity_test gpu_bench"
[ "$E2E" = 1 ] && targets="$targets freshrec-train"
# shellcheck disable=SC2086
ninja -C "$BUILD_DIR" -j"$JOBS" $targets || { echo "gpu_check: build failed"; exit 1; }

step "CUDA tests"
tests_status=""
for t in cuda_kernels_test cuda_backend_parity_test; do
  # Blocking launches: a kernel fault is reported at the kernel that caused it; a hang
  # cannot eat the lease.
  CUDA_LAUNCH_BLOCKING=1 timeout 180 "$BUILD_DIR/tests/cuda/$t" --gtest_color=no 2>&1 | tee "$OUT_DIR/$t.txt" |
    grep -E "^\[  (FAILED|SKIPPED|PASSED) |^\[==========\]|Failure|error"
  rc=${PIPESTATUS[0]}
  tests_status="$tests_status $t=$([ "$rc" = 0 ] && echo pass || echo FAIL)"
done

if ! "$BUILD_DIR/tests/bench/gpu_bench" --probe; then
  echo "gpu_check: no device; stopping after the build and the (skipped) tests:$tests_status"
  exit 3
fi

step "gpu_bench --scales $SCALES"
timeout $(( 300 - $(elapsed) > 90 ? 300 - $(elapsed) : 90 )) \
  "$BUILD_DIR/tests/bench/gpu_bench" --scales "$SCALES" --iterations "$BENCH_ITERS" --cpu-iterations 2 \
  2>&1 | tee "$OUT_DIR/gpu_bench.txt"
bench_rc=${PIPESTATUS[0]}

e2e_line="skipped"
if [ "$E2E" = 1 ] && [ "$(elapsed)" -lt 270 ]; then
  step "nightly job end to end (generated 20M events, backend cuda)"
  s0=$(date +%s.%N)
  if timeout $(( 390 - $(elapsed) )) "$BUILD_DIR/pipelines/freshrec-train" --config configs/nightly.yaml \
      --set data.generator.events=20000000 --set data.generator.users=140000 --set data.generator.items=27000 \
      --set train.backend=cuda --set output.dir=/tmp/freshrec-models \
      --metrics-out "$OUT_DIR/e2e_metrics.json" 2>&1 | tail -25; then
    e2e_line=$(python3 -c "print(f'{$(date +%s.%N)-$s0:.1f} s wall')" 2>/dev/null || echo "done")
  else
    e2e_line="failed or timed out (see log)"
  fi
fi

echo
echo "=== summary [$(elapsed)s]"
echo "tests:$tests_status"
echo "nightly job end to end (20M events, cuda): $e2e_line"
echo "gpu_bench exit: $bench_rc"
sed -n '/^case /,$p' "$OUT_DIR/gpu_bench.txt"
