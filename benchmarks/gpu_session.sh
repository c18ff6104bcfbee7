#!/usr/bin/env bash
# One device call for issue 8: everything benchmarks/gpu_eval.py measures, on the GPU machine.
# Carry .gpu (built here by `bash benchmarks/gpu_bundle.sh`); figures, the profile and the log go to $OUT:
#   run(command="bash benchmarks/gpu_session.sh", carry=[".gpu"], timeout_s=540)
# With the argument e2e it runs `gpu_eval.py --end-to-end` instead (issue 24: every task of `medsyn eval --tasks en`
# on 5 cases, 8.4 images each on average, ours / lighteval / VLMEvalKit's loop, extrapolated to 452 cases), sized
# at about 5 minutes with start-up so that 15 minutes of device time hold a rerun:
#   run(command="bash benchmarks/gpu_session.sh e2e", carry=[".gpu"], timeout_s=360)
# ARCH, BATCH_SIZE, EXTRA (more gpu_eval.py arguments), PYTHON and BUNDLE override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/results}"
bundle="${BUNDLE:-$PWD/.gpu}"
mkdir -p "$out"
export PYTHONPATH="$bundle/site:$bundle/stubs:$PWD/src" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=true \
  PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True PYTHONUNBUFFERED=1
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_')
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/gpu.txt"
# A few seconds on the tiny Qwen first: where a part of our path fails on this machine, the run times it
# without that part (said in smoke.log and in the JSON's ours_backend_args) rather than losing the call.
fallback=""
smoke="--max-fp32-diff 1e-3"
[ "${1:-}" = e2e ] && smoke="--end-to-end --gen-tokens 2 --ddx-tokens 4"
for off in "" "--backend-arg aligned_vision_mlp=false"; do
  if "${PYTHON:-python3}" benchmarks/gpu_eval.py --arch qwen2_5_vl_tiny --cases 2 --peers "" --batch-size 16 $smoke $off \
      --out /tmp/smoke.json >> "$out/smoke.log" 2>&1; then fallback="$off"; echo "smoke passed with: ${off:-everything on}" | tee -a "$out/smoke.log"; break; fi
  echo "smoke failed with: ${off:-everything on}" | tee -a "$out/smoke.log"
done
if [ "${1:-}" = e2e ]; then  # lighteval at 48: one batch for each task's prompts (bs 32/64 were within 10% on ES before)
  "${PYTHON:-python3}" benchmarks/gpu_eval.py --arch "${ARCH:-qwen2_5_vl_7b}" --end-to-end --cases 5 --batch-size "${BATCH_SIZE:-64}" \
    --gen-tokens 30 --ddx-tokens 256 --lighteval-batch-sizes 48 --out "$out/gpu_e2e_${ARCH:-qwen2_5_vl_7b}_$gpu.json" $fallback ${EXTRA:-} \
    2>&1 | tr '\r' '\n' | grep -v "it/s]" | tee "$out/gpu_e2e.log"
  exit 0
fi
"${PYTHON:-python3}" benchmarks/gpu_eval.py --arch "${ARCH:-qwen2_5_vl_7b}" --cases 8 --batch-size "${BATCH_SIZE:-16,32,64}" \
  --lighteval-batch-sizes 16,32,64 --ablations --profile "$out/profile_es_batch_$gpu.txt" \
  --out "$out/gpu_eval_${ARCH:-qwen2_5_vl_7b}_$gpu.json" $fallback ${EXTRA:-} 2>&1 | tr '\r' '\n' | grep -v "it/s]" | tee "$out/gpu_eval.log"
