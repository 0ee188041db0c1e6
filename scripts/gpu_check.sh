#!/usr/bin/env bash
# GPU check: audioclf on a CUDA device, unattended, from a fresh checkout of this repository.
#
#   scripts/gpu_check.sh            # every step (about 15-30 minutes on one GPU, most of it the parity suite)
#   GPU_CHECK_STEPS="env classify" scripts/gpu_check.sh    # some steps only
#
# Steps (each logs to $GPU_CHECK_DIR/<step>.log; a summary table is printed at the end):
#   env          torch sees a CUDA device; versions and the device name
#   parity-fp32  tests/test_parity.py with our models on the GPU in float32 (AUDIOCLF_TEST_DEVICE=cuda), against
#                transformers on the CPU: logits and every hidden state within 1e-4 (TF32 off)
#   parity-fp16  the same in float16 (scaled tolerance 3e-2: checks the wiring on the device, not float32 parity)
#   parity-bf16  the same in bfloat16 (1e-1)
#   classify     `audioclf classify --device cuda` on the 240 held-out clips with the bundled model in float32,
#                float16 and bfloat16, against `--device cpu --backend torch`: float32 top-1 identical and scores
#                within 1e-4; half precisions top-1 agreement >= 97.5 % and scores within 5e-2; accuracy of each
#   ray          `audioclf classify --engine ray --device cuda` (a local Ray, one GPU actor) on the same clips:
#                the same records as the local CPU run (top-1 identical, scores within 1e-4)
#   bench        scripts/bench.py rows on the GPU (api-cuda, api-cuda-fp16, api-cuda-bf16) next to the CPU api and
#                the transformers pipeline, w2v2-base on the 1 s and 10 s sets, one repetition
#
# Environment:
#   PYTHON          an interpreter with a CUDA build of torch and audioclf installed with the test,ray,bench extras;
#                   default: .venv-gpu/bin/python, created on first use (pip install torch + -e '.[test,ray,bench]')
#   GPU_CHECK_DIR   where logs and outputs go (default gpu-check-<date>)
#   GPU_CHECK_STEPS the steps to run, space-separated (default all of the above)
#   GPU_CHECK_DEVICE the device under test (default cuda; cpu runs the plumbing of the script on a machine without
#                   a GPU, which is how the script itself is tested)
#
# Exit status: 0 when every step passed, 1 when one failed (its log's last lines are printed), 2 for usage errors.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DEVICE=${GPU_CHECK_DEVICE:-cuda}
OUT=${GPU_CHECK_DIR:-$ROOT/gpu-check-$(date +%Y%m%d-%H%M%S)}
STEPS=${GPU_CHECK_STEPS:-env parity-fp32 parity-fp16 parity-bf16 classify ray bench}
HELDOUT=$ROOT/tests/data/heldout
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 RAY_USAGE_STATS_ENABLED=0 NO_COLOR=1

for step in $STEPS; do
    case $step in
        env|parity-fp32|parity-fp16|parity-bf16|classify|ray|bench) ;;
        *) echo "gpu_check: unknown step '$step'" >&2; exit 2 ;;
    esac
done

if [[ -z ${PYTHON:-} ]]; then
    PYTHON=$ROOT/.venv-gpu/bin/python
    if [[ ! -x $PYTHON ]]; then
        echo "== creating .venv-gpu (torch with CUDA, audioclf[test,ray,bench]) ..."
        python3 -m venv "$ROOT/.venv-gpu" \
            && "$PYTHON" -m pip install --quiet --disable-pip-version-check torch==2.13.0 \
            && "$PYTHON" -m pip install --quiet --disable-pip-version-check -e "$ROOT[test,ray,bench]" \
            || { echo "gpu_check: could not create .venv-gpu" >&2; exit 1; }
    fi
fi
BIN=$(dirname "$PYTHON")
AUDIOCLF=$BIN/audioclf

declare -a NAMES RESULTS SECONDS_TAKEN
FAILED=0

run_step() {  # run_step NAME COMMAND...: run, log, record pass/fail and time
    local name=$1 started rc
    shift
    echo "== $name ..."
    started=$(date +%s)
    "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    NAMES+=("$name")
    SECONDS_TAKEN+=($(( $(date +%s) - started )))
    if [[ $rc -eq 0 ]]; then
        RESULTS+=("pass")
        tail -n 3 "$OUT/$name.log" | sed 's/^/   /'
    else
        RESULTS+=("FAIL (exit $rc)")
        FAILED=1
        echo "   FAILED (exit $rc); last lines of $OUT/$name.log:"
        tail -n 25 "$OUT/$name.log" | sed 's/^/   | /'
    fi
}

step_env() {
    "$PYTHON" - "$DEVICE" <<'EOF'
import sys
import torch, onnxruntime, audioclf
device = sys.argv[1]
print("torch", torch.__version__, "cuda", torch.version.cuda, "onnxruntime", onnxruntime.__version__)
if device.startswith("cuda"):
    if not torch.cuda.is_available():
        sys.exit("torch sees no CUDA device (a CPU build of torch, or no driver)")
    print("device:", torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0),
          "bf16", torch.cuda.is_bf16_supported())
print("audioclf", audioclf.__file__)
EOF
}

step_parity() {  # step_parity DTYPE
    AUDIOCLF_TEST_DEVICE=$DEVICE AUDIOCLF_TEST_DTYPE=$1 "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_parity.py
}

classify_to() {  # classify_to FILE OPTIONS...: the held-out clips through the CLI, JSON Lines, every label's score
    local target=$1
    shift
    "$AUDIOCLF" classify "$HELDOUT" --top-k 0 --format jsonl --quiet --output "$target" "$@"
}

# compare REFERENCE CANDIDATE MAX_SCORE_DIFF MIN_TOP1_AGREEMENT: records matched by file name; prints agreement,
# max |score difference| and both accuracies (labels from the held-out manifest); exit 1 past either bound
compare() {
    "$PYTHON" - "$@" "$HELDOUT/manifest.json" <<'EOF'
import json, sys
from pathlib import Path

def records(path):
    files = sorted(Path(path).glob("part-*.jsonl")) if Path(path).is_dir() else [Path(path)]
    out = {}
    for file in files:
        for line in file.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                if "error" in record:
                    sys.exit(f"{record['path']}: {record['error']}")
                out[Path(record["path"]).name] = {x["label"]: x["score"] for x in record["labels"]}
    return out

reference, candidate = records(sys.argv[1]), records(sys.argv[2])
bound, min_agreement = float(sys.argv[3]), float(sys.argv[4])
if set(reference) != set(candidate) or not reference:
    sys.exit(f"different files: {len(reference)} vs {len(candidate)} records")
top = lambda scores: max(scores, key=scores.get)
agree = sum(top(reference[n]) == top(candidate[n]) for n in reference) / len(reference)
diff = max(abs(reference[n][label] - candidate[n][label]) for n in reference for label in reference[n])
truth = {clip["file"]: clip["label"] for clip in json.loads(Path(sys.argv[5]).read_text())["clips"]}
accuracy = lambda rs: sum(top(rs[n]) == truth[n] for n in rs) / len(rs)
print(f"{Path(sys.argv[2]).name}: {len(reference)} clips, top-1 agreement {agree:.4f}, max |score diff| {diff:.2e}, "
      f"accuracy {accuracy(candidate):.4f} (reference {accuracy(reference):.4f})")
if agree < min_agreement or diff > bound:
    sys.exit(f"past the bounds: agreement >= {min_agreement}, max |score diff| <= {bound}")
EOF
}

step_classify() {
    local ok=0
    classify_to "$OUT/classify-cpu.jsonl" --device cpu --backend torch || return 1
    classify_to "$OUT/classify-$DEVICE-float32.jsonl" --device "$DEVICE" || return 1
    compare "$OUT/classify-cpu.jsonl" "$OUT/classify-$DEVICE-float32.jsonl" 1e-4 1.0 || ok=1
    for dtype in float16 bfloat16; do
        classify_to "$OUT/classify-$DEVICE-$dtype.jsonl" --device "$DEVICE" --dtype "$dtype" || { ok=1; continue; }
        compare "$OUT/classify-cpu.jsonl" "$OUT/classify-$DEVICE-$dtype.jsonl" 5e-2 0.975 || ok=1
    done
    return $ok
}

step_ray() {
    [[ -f $OUT/classify-cpu.jsonl ]] || classify_to "$OUT/classify-cpu.jsonl" --device cpu --backend torch || return 1
    rm -rf "$OUT/ray"
    env -u RAY_ADDRESS "$AUDIOCLF" classify "$HELDOUT" --engine ray --device "$DEVICE" --workers 1 --top-k 0 \
        --format jsonl --quiet --output "$OUT/ray" || return 1
    compare "$OUT/classify-cpu.jsonl" "$OUT/ray" 1e-4 1.0
}

step_bench() {
    local rows=cuda,cuda-fp16,cuda-bf16
    [[ $DEVICE == cpu ]] && rows=bf16  # the plumbing only: no GPU rows without a GPU
    "$PYTHON" scripts/bench.py --models w2v2-base --sets 1s,10s --repeats 1 --no-peers --no-sf \
        --precision "$rows" --json "$OUT/bench.json"
}

for step in $STEPS; do
    case $step in
        env) run_step env step_env ;;
        parity-fp32) run_step parity-fp32 step_parity float32 ;;
        parity-fp16) run_step parity-fp16 step_parity float16 ;;
        parity-bf16) run_step parity-bf16 step_parity bfloat16 ;;
        classify) run_step classify step_classify ;;
        ray) run_step ray step_ray ;;
        bench) run_step bench step_bench ;;
    esac
    if [[ $step == env && $FAILED -ne 0 ]]; then
        break  # nothing else can run without the device
    fi
done

echo
echo "== GPU check summary (device $DEVICE, logs in $OUT)"
printf '%-14s %-16s %8s\n' step result seconds
for i in "${!NAMES[@]}"; do
    printf '%-14s %-16s %8s\n' "${NAMES[$i]}" "${RESULTS[$i]}" "${SECONDS_TAKEN[$i]}"
done
if [[ $FAILED -ne 0 ]]; then
    echo "GPU check: FAILED"
    exit 1
fi
echo "GPU check: all passed"
