#!/usr/bin/env bash
# Builds the addon with AddressSanitizer and, separately, ThreadSanitizer (in temp
# copies, so native/build stays the Release build) and runs the native concurrency
# and learned-parameter tests under each, with the sanitizer runtime LD_PRELOADed into node.
#   native/scripts/sanitize.sh [address|thread ...]   (default: both)
# Env: WINNOW_STRESS_SECONDS (default 20).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
GYP="$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$GYP" ] || GYP=/usr/share/nodejs/npm/node_modules/node-gyp/bin/node-gyp.js
[ -f "$GYP" ] || GYP=/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js
# Offline builds need node's own headers (npm passes its nodedir config; node-gyp run directly does not).
NODEDIR="${npm_config_nodedir:-$(npm config get nodedir 2>/dev/null || true)}"
[ -n "$NODEDIR" ] && [ "$NODEDIR" != "undefined" ] || NODEDIR=/usr
KINDS=("$@")
[ ${#KINDS[@]} -eq 0 ] && KINDS=(address thread)
status=0
for kind in "${KINDS[@]}"; do
  case "$kind" in
    address) lib=libasan.so ;;
    thread) lib=libtsan.so ;;
    *) echo "unknown sanitizer $kind" >&2; exit 2 ;;
  esac
  work="$(mktemp -d /tmp/winnow-san-$kind-XXXX)"
  cp -r "$ROOT/native/binding.gyp" "$ROOT/native/src" "$work/"
  ln -s "$ROOT/node_modules" "$work/node_modules"
  echo "== building with -fsanitize=$kind in $work"
  (cd "$work" && node "$GYP" rebuild --nodedir="$NODEDIR" --winnow_sanitize="$kind" >"$work/build.log" 2>&1) || { tail -30 "$work/build.log"; exit 1; }
  runtime="$(g++ -print-file-name=$lib)"
  log="$work/test.log"
  echo "== running concurrency and learn tests under $kind ($runtime)"
  set +e
  (
    cd "$ROOT"
    export WINNOW_STRESS_TIMEOUT_S=${WINNOW_STRESS_TIMEOUT_S:-900}  # sanitizers slow everything 5-15x
    export WINNOW_NATIVE_ADDON="$work/build/Release/winnow_native.node"
    export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:log_path=$work/asan"
    export TSAN_OPTIONS="halt_on_error=0:exitcode=0:second_deadlock_stack=1:log_path=$work/tsan:suppressions=$ROOT/native/scripts/tsan.supp"
    LD_PRELOAD="$runtime" setarch "$(uname -m)" -R node node_modules/vitest/vitest.mjs run --config native/scripts/vitest.sanitize.config.ts
  ) >"$log" 2>&1
  rc=$?
  set -e
  grep -E "Tests|✓|FAIL|passed|failed" "$log" | sed 's/\x1b\[[0-9;]*m//g' | tail -5
  # A report counts against the addon when any frame lies in it; the rest come from
  # uninstrumented node/V8/rolldown internals and are listed, not judged.
  ours=0; theirs=0
  for f in "$work"/asan.* "$work"/tsan.*; do
    [ -f "$f" ] || continue
    n_ours=$(awk '/^(WARNING|ERROR|==[0-9]+==ERROR)/{r=1;hit=0} /winnow_native.node|winnow::/{if(r&&!hit){hit=1;c++}} END{print c+0}' "$f")
    n_all=$(grep -cE "^WARNING: ThreadSanitizer|ERROR: AddressSanitizer" "$f" || true)
    ours=$((ours + n_ours)); theirs=$((theirs + n_all - n_ours))
    if [ "$n_ours" -gt 0 ]; then echo "!! $kind reports in the addon ($f):"; grep -B2 -A30 -E "winnow" "$f" | head -80; fi
  done
  echo "== $kind: $ours report(s) in the addon, $theirs in uninstrumented node/V8/rolldown code (ignored)"
  [ "$ours" -eq 0 ] || status=1
  if [ $rc -ne 0 ]; then echo "!! $kind run exited with $rc (log: $log)"; status=1; elif [ "$ours" -eq 0 ]; then echo "== $kind: clean"; fi
done
exit $status
