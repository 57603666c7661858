#!/usr/bin/env bash
# GPU check (Sec. V): profile resnet18, densenet121 and mobilenetv2 at CIFAR size (3x32x32)
# with `feel profile`, fit Assumption 1 (Eq. 27), plot the curves together as in Fig. 2(b),
# build a GPU fleet from the measured profiles and run the GPU scenario for a few rounds with
# the clients computing on the same device. Profiles, plots and results land in one folder.
# Meant to finish in under 5 minutes on a machine with an NVIDIA GPU.
#
# usage: scripts/gpu_check.sh [OUT_DIR] [--device cuda|cpu]
#   OUT_DIR     where everything goes (default ./gpu-check)
#   --device    cuda (default, or $GPU_CHECK_DEVICE); cpu runs the same steps without a GPU
# environment, e.g. for a quick CPU test:
#   GPU_CHECK_MODELS     models to profile ("resnet18 densenet121 mobilenetv2")
#   GPU_CHECK_MAX_BATCH  largest batch profiled (128)
#   GPU_CHECK_REPEATS    timed runs per batch size (10)
#   GPU_CHECK_ROUNDS     rounds of the GPU scenario (3)
#   GPU_CHECK_CLIENTS    devices in the simulated fleet (6)
#   GPU_CHECK_SIM_ARGS   extra `feel simulate` options, e.g. "--model resnet18"
#   PYTHON               interpreter with feel's dependencies (.venv/bin/python, else python3)
set -euo pipefail

out_dir=./gpu-check
device=${GPU_CHECK_DEVICE:-cuda}
while (($#)); do
    case $1 in
        --device) device=${2:?--device needs cpu or cuda}; shift 2 ;;
        --device=*) device=${1#--device=}; shift ;;
        -h | --help) sed -n '2,/^set -euo/{/^set/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        -*) echo "gpu_check.sh: unknown option $1" >&2; exit 2 ;;
        *) out_dir=$1; shift ;;
    esac
done
models=${GPU_CHECK_MODELS:-resnet18 densenet121 mobilenetv2}
max_batch=${GPU_CHECK_MAX_BATCH:-128}
repeats=${GPU_CHECK_REPEATS:-10}
rounds=${GPU_CHECK_ROUNDS:-3}
clients=${GPU_CHECK_CLIENTS:-6}

repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
python=${PYTHON:-python3}
[[ -z ${PYTHON:-} && -x $repo/.venv/bin/python ]] && python=$repo/.venv/bin/python
cd "$repo"
feel() { "$python" -m cli.main "$@"; }
started=$SECONDS

echo "== gpu_check: device $device, models: $models; output in $out_dir"
"$python" -c 'import torch; print("torch", torch.__version__, "| cuda available:", torch.cuda.is_available())'
[[ $device == cuda ]] && { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true; }

profiles=()
for model in $models; do
    echo "== profile $model"
    feel profile --model "$model" --device "$device" --in-channels 3 --image-size 32 \
        --max-batch "$max_batch" --repeats "$repeats" \
        --out "$out_dir/profile-$model.json" --plot "$out_dir/profile-$model.png"
    profiles+=("$out_dir/profile-$model.json")
done

echo "== Fig. 2(b) plot and fleet file from ${#profiles[@]} profiles"
"$python" - "$out_dir" "$clients" "${profiles[@]}" <<'EOF'
import json
import sys
from pathlib import Path

from client.profiler.report import plot_profiles

out_dir, clients, paths = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
reports = [json.loads(Path(p).read_text()) for p in paths]
plot_profiles(reports, out_dir / "fig2b.png")
# Each measured model stands for one kind of GPU device, cycled over the fleet; device k sits
# at the (k + 1/2)/K area quantile of the 200 m cell (fleet file format: fleet/sources.py).
devices = [
    {"distance_m": 200.0 * ((k + 0.5) / clients) ** 0.5, **reports[k % len(reports)]["gpu_profile"]}
    for k in range(clients)
]
(out_dir / "fleet.json").write_text(json.dumps({"devices": devices}, indent=2) + "\n")
for r in reports:
    g, f = r["gpu_profile"], r["gpu_fit"]
    print(f"{r['model']:>12}: floor {g['latency_floor_s'] * 1e3:.2f} ms, "
          f"slope {g['latency_slope_s'] * 1e3:.3f} ms/sample, threshold {g['batch_threshold']:.1f}, "
          f"update {g['update_s'] * 1e3:.2f} ms, fit error {f['relative_error']:.1%} ({r['device_name']})")
EOF

echo "== simulate $rounds rounds of the GPU scenario on $device"
# shellcheck disable=SC2086 # GPU_CHECK_SIM_ARGS is a list of options
feel simulate --scenario gpu --device "$device" --rounds "$rounds" --clients "$clients" \
    --fleet-file "$out_dir/fleet.json" --results-dir "$out_dir/results" ${GPU_CHECK_SIM_ARGS:-}

echo "== done in $((SECONDS - started)) s: $out_dir"
ls -1 "$out_dir"
