#!/usr/bin/env bash
# Rebuild the shipped keypoint model (src/facecue/weights/keypoints15.onnx and its card) from
# the real data, two runs at a time, one per core, on 1 torch thread each: the schedule whose
# elapsed time the card gives as training_wall_time_minutes (103 min here for the shipped model).
#
#   bash scripts/train_keypoints.sh            # the full recipe, into runs/
#   SMOKE=1 RUNS=/tmp/kp bash scripts/train_keypoints.sh   # the same steps, tiny (tests)
#
# SMOKE trains a few rows for one epoch at width 4 and writes the model beside the runs, not
# into the package. A rerun after an interruption skips the steps whose output exists and
# resumes an interrupted training run from its last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
FACECUE="${FACECUE:-.venv/bin/facecue}"
SHARED="${SHARED:-../shared}"
R="${RUNS:-runs}"
mkdir -p "$R"

if [[ -n "${SMOKE:-}" ]]; then
  TINY=(--epochs 1 --limit 48 --width 4 --batch-size 16)
  LABEL_LIMIT=(--limit 64)
  SHIP=(--weights "$R/weights" --no-quantize)
else
  TINY=() LABEL_LIMIT=() SHIP=()
fi

step() {  # step OUTPUT COMMAND...: run COMMAND unless OUTPUT exists; log to OUTPUT.log
  local out=$1; shift
  if [[ -e "$out/metrics.json" || -f "$out" ]]; then echo "have $out"; return; fi
  echo "$(date +%T) $*"
  "$@" > "$out.log" 2>&1 || { echo "failed: $* (see $out.log)" >&2; return 1; }
}
both() {  # wait for the steps running in the background; fail if any failed
  local pid status=0
  for pid in $(jobs -p); do wait "$pid" || status=1; done
  return "$status"
}
train() {  # train OUT DATA [options...]; an interrupted run resumes from its last.pt
  local out=$1 data=$2 again=(); shift 2
  [[ -e "$out/last.pt" ]] && again=(--resume)
  step "$out" "$FACECUE" train keypoints --data "$data" --out "$out" --threads 1 "$@" \
    "${TINY[@]}" "${again[@]}"
}

DATA="$R/yt68_keypoints.csv.gz"
step "$DATA" "$FACECUE" data from-68 "$SHARED/data/youtube-faces-68" --out "$DATA"

HEADS=(--context-head --fine-heatmaps)
TEACH=(--epochs 80 --flip-prob 0)  # the defaults, spelled out as in the card's commands
TEACHERS=("$R/kp_cut_e80" "$R/kp_cut_e80_s1" "$R/keypoints15_aug_e80_s1" "$R/kp_ctxfine_e80")
{ train "${TEACHERS[0]}" "$DATA" "${TEACH[@]}" "${HEADS[@]}" --cutout-prob 0.5 --seed 0 --plots
  train "${TEACHERS[2]}" "$DATA" "${TEACH[@]}" --seed 1 --plots; } &
{ train "${TEACHERS[1]}" "$DATA" "${TEACH[@]}" "${HEADS[@]}" --cutout-prob 0.5 --seed 1 --plots
  train "${TEACHERS[3]}" "$DATA" "${TEACH[@]}" "${HEADS[@]}" --seed 0 --plots; } &
both

# the teacher labels 28,709 FER2013 faces, and the real train and val faces half and half
step "$R/fer_pseudo4.csv.gz" "$FACECUE" label pseudo "${TEACHERS[@]}" \
  --fer "${FER:-$SHARED/data/fer2013/fer2013.csv.gz}" --out "$R/fer_pseudo4.csv.gz" \
  "${LABEL_LIMIT[@]}" &
step "$R/yt68_blend_trainval.csv.gz" "$FACECUE" label blend "${TEACHERS[@]}" \
  --data "$DATA" --splits train val --out "$R/yt68_blend_trainval.csv.gz" &
both

# the students: the FER faces for 12 epochs, then the blended real faces, both with the
# shipped heads (a context head, 24x24 maps; cutout on the real faces)
PRE=(--epochs 12)
[[ -n "${SMOKE:-}" ]] && PRE=()
for seed in 0 1; do
  train "$R/kp_pre2_s$seed" "$R/fer_pseudo4.csv.gz" "${PRE[@]}" "${HEADS[@]}" --seed "$seed" &
done
both
FINAL=("$R/kp_p2_final_s0" "$R/kp_p2_final_s1")
for seed in 0 1; do
  train "${FINAL[$seed]}" "$R/yt68_blend_trainval.csv.gz" --init "$R/kp_pre2_s$seed/best.pt" \
    "${HEADS[@]}" --cutout-prob 0.5 --with-val --seed "$seed" --plots &
done
both

"$FACECUE" ship keypoints "${FINAL[@]}" "${SHIP[@]}"
