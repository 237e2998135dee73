#!/usr/bin/env bash
# GPU check of hoi_adapt on a CUDA machine, in about 5 minutes (hard budget: --budget, default 450 s).
#
#   bash experiments/gpu_check.sh               # on the GPU machine (results: experiments/results/, and $OUT)
#   bash experiments/gpu_check.sh --dry-run     # here, on CPU: tiny settings, results in a temporary folder
#   bash experiments/gpu_check.sh --help
#
# Steps, in order; each is logged with timestamps, runs under `timeout` and is recorded (ok / failed /
# timeout / skipped, seconds, exit status); a failed step never stops the later ones, and the summary is
# always written:
#   install  an importable environment (hoi_adapt, torch, pytorch3d, pytorch_lightning): $HOI_ADAPT_PYTHON,
#            then .venv/bin/python, then python3 on PATH; if none imports, `make install` (the README's
#            install path: .venv + `pip install -e .[test]`), after probing whether PyPI can be reached.
#   smi      nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
#   facts    torch and CUDA versions, torch.cuda.is_available(), the device, and PyTorch3D's rasteriser on
#            CUDA (a small sphere rasterised naive and binned, compared with the CPU, and a backward pass)
#   tests    python -m pytest -m gpu -q  (the tests marked `gpu` in tests/; junit XML for the counts)
#   world    the demo synthetic world the training benchmark reads (outputs/world/demo; reused when complete)
#   train    experiments/bench_training.py --device cuda --size 128: images/s per phase
#            (results gpu_training_128px.{json,md})
#   infer    experiments/bench_inference.py --device cuda --size 128 --batch-sizes 1,64: E alone and the
#            adapted pipeline (results gpu_inference.{json,md}); ONNX Runtime and the MediaPipe peer are CPU
#            things and not part of it
#   summary  <results>/gpu_check.{json,md}: machine facts, each step's status and duration, test counts,
#            key throughput figures; copied with the benchmark results and all logs into $OUT when set.
# No full-scale training run.
#
# The script never uses `set -e`: every step's status is checked explicitly. Exit status: 0 when no step
# failed or timed out, 1 otherwise, 2 on a usage error.
set -u
set -o pipefail

usage() {
    cat <<'EOF'
Usage: bash experiments/gpu_check.sh [options]

GPU check: install/locate the environment, device facts, `pytest -m gpu`, training and inference
throughput at 128 px on CUDA, then a summary in <results>/gpu_check.{json,md} (and in $OUT when set).

Options:
  --dry-run          check the plumbing on any machine: CUDA when available, else CPU; tiny settings
                     (64 px, 2 timed steps, batches 1,4); results in a new temporary folder
  --results-dir DIR  where the result files go (default: experiments/results; dry run: a temp folder)
  --device DEV       device of the benchmarks (default: cuda; dry run: cuda if available, else cpu)
  --budget SECONDS   wall-time budget of the whole run (default 450; dry run 1500); a step gets at most
                     what is left, minus what the later steps need
  --skip STEPS       comma-separated steps to skip: install,smi,facts,tests,world,train,infer
  -h, --help         this help

Environment:
  HOI_ADAPT_PYTHON   interpreter to use (checked first; must import hoi_adapt, torch, pytorch3d)
  OUT                when set, the summary, benchmark results, junit XML and logs are copied there
  OMP_WAIT_POLICY    defaults to PASSIVE
EOF
}

DRY_RUN=0
RESULTS_DIR=""
DEVICE=""
BUDGET=""
SKIP=","
while (( $# > 0 )); do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --results-dir) [[ $# -ge 2 ]] || { echo "--results-dir needs a value" >&2; exit 2; }; RESULTS_DIR=$2; shift ;;
        --device) [[ $# -ge 2 ]] || { echo "--device needs a value" >&2; exit 2; }; DEVICE=$2; shift ;;
        --budget) [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || { echo "--budget needs a number of seconds" >&2; exit 2; }; BUDGET=$2; shift ;;
        --skip) [[ $# -ge 2 ]] || { echo "--skip needs a value" >&2; exit 2; }; SKIP=",$2,"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || exit 2
cd "$REPO" || exit 2
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export PYTHONUNBUFFERED=1
# the working tree first: a venv made elsewhere may hold an editable install pointing at another checkout
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

START=$(date +%s)
STARTED_ISO=$(date -u +%Y-%m-%dT%H:%M:%SZ)
if (( DRY_RUN )); then
    BUDGET=${BUDGET:-1500}
    RESULTS_DIR=${RESULTS_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check_dry.XXXXXX")}
    SIZE=64; TRAIN_STEPS=2; TRAIN_WORKERS=1; BATCH_SIZES=1,4; INFER_REPEATS=3; INFER_IMAGES=2; INFER_THREADS=2
else
    BUDGET=${BUDGET:-450}
    RESULTS_DIR=${RESULTS_DIR:-$REPO/experiments/results}
    SIZE=128; TRAIN_STEPS=20; TRAIN_WORKERS=4; BATCH_SIZES=1,64; INFER_REPEATS=20; INFER_IMAGES=8; INFER_THREADS=4
fi
mkdir -p "$RESULTS_DIR" || { echo "cannot create $RESULTS_DIR" >&2; exit 2; }
RESULTS_DIR=$(cd "$RESULTS_DIR" && pwd)
DEADLINE=$(( START + BUDGET ))
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check_work.XXXXXX") || exit 2
LOGS=$WORK/logs
mkdir -p "$LOGS"
STEPS_TSV=$WORK/steps.tsv
: >"$STEPS_TSV"
MAIN_LOG=$LOGS/gpu_check.log
PY=""           # the interpreter of the project's environment, once found
PY_SOURCE=""
INSTALL_NOTE=""
CUDA_OK=0
CORES=$(nproc 2>/dev/null || echo 4)

log() {
    printf '[%s +%4ds] %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$(( $(date +%s) - START ))" "$*" | tee -a "$MAIN_LOG"
}

# record NAME STATUS SECONDS RC NOTE
record() {
    local note=${5//$'\t'/ }
    note=${note//$'\n'/ }
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$note" >>"$STEPS_TSV"
    log "step $1: $2 (${3}s, exit status $4)${note:+ - $note}"
}

skipped() { [[ $SKIP == *",$1,"* ]]; }

# time_for NOMINAL RESERVE: seconds a step may take (0 when under 10 s are left once RESERVE is kept back)
time_for() {
    local left=$(( DEADLINE - $(date +%s) - $2 )) t=$1
    (( left < t )) && t=$left
    (( t < 10 )) && t=0
    echo "$t"
}

# run_step NAME NOMINAL_TIMEOUT RESERVE SKIP_RC CMD...: run CMD under timeout, output to logs/NAME.log.
# SKIP_RC: an exit status meaning "not applicable here" (recorded as skipped; -1 for none).
LAST_RC=0
run_step() {
    local name=$1 nominal=$2 reserve=$3 skip_rc=$4
    shift 4
    LAST_RC=0
    if skipped "$name"; then record "$name" skipped 0 - "--skip"; LAST_RC=-1; return 0; fi
    local t
    t=$(time_for "$nominal" "$reserve")
    if (( t == 0 )); then record "$name" skipped 0 - "no time left in the ${BUDGET}s budget"; LAST_RC=-1; return 0; fi
    log "step $name: start (timeout ${t}s): $*"
    local t0 rc dt status note=""
    t0=$(date +%s)
    timeout --kill-after=15 "$t" "$@" >"$LOGS/$name.log" 2>&1
    rc=$?
    dt=$(( $(date +%s) - t0 ))
    if (( rc == 0 )); then status=ok
    elif (( rc == 124 || rc == 137 )); then status=timeout; note="killed after ${t}s"
    elif (( rc == skip_rc )); then status=skipped; note=$(tail -n 1 "$LOGS/$name.log")
    else status=failed; note=$(grep -v '^\s*$' "$LOGS/$name.log" | tail -n 1 | cut -c1-300)
    fi
    tail -n 6 "$LOGS/$name.log" | sed 's/^/    | /' | tee -a "$MAIN_LOG"
    record "$name" "$status" "$dt" "$rc" "$note"
    LAST_RC=$rc
    return 0
}

# ---------------------------------------------------------------------------------------------- 1. install
ENV_CHECK='import sys, torch, pytorch3d, pytorch3d.renderer, pytorch_lightning, hoi_adapt; print(sys.executable, "torch", torch.__version__, "pytorch3d", pytorch3d.__version__)'

env_ok() {  # env_ok PYTHON: whether it imports the project's stack (output appended to the install log)
    [[ -n $1 ]] || return 1
    command -v "$1" >/dev/null 2>&1 || [[ -x $1 ]] || { echo "$1: not found" >>"$LOGS/install.log"; return 1; }
    local t
    t=$(time_for 120 60)
    (( t > 0 )) || return 1
    echo "\$ $1 -c '<import check>'" >>"$LOGS/install.log"
    timeout --kill-after=10 "$t" "$1" -c "$ENV_CHECK" >>"$LOGS/install.log" 2>&1
}

step_install() {
    local t0 status=ok note="" rc=0
    t0=$(date +%s)
    : >"$LOGS/install.log"
    if skipped install; then record install skipped 0 - "--skip"; return; fi
    log "step install: looking for an importable environment"
    if [[ -n ${HOI_ADAPT_PYTHON:-} ]]; then
        if env_ok "$HOI_ADAPT_PYTHON"; then PY=$HOI_ADAPT_PYTHON; PY_SOURCE="HOI_ADAPT_PYTHON"
        else INSTALL_NOTE="HOI_ADAPT_PYTHON=$HOI_ADAPT_PYTHON does not import the stack; "; fi
    fi
    if [[ -z $PY ]] && env_ok "$REPO/.venv/bin/python"; then PY=$REPO/.venv/bin/python; PY_SOURCE=".venv (existing)"; fi
    if [[ -z $PY ]] && command -v python3 >/dev/null 2>&1 && env_ok "$(command -v python3)"; then
        PY=$(command -v python3); PY_SOURCE="python3 on PATH"
    fi
    if [[ -z $PY ]]; then
        local net=unreachable
        if command -v python3 >/dev/null 2>&1 &&
            timeout 10 python3 -c 'import socket; socket.create_connection(("pypi.org", 443), timeout=6)' >>"$LOGS/install.log" 2>&1; then
            net=reachable
        fi
        log "step install: no importable environment; pypi.org is $net; trying \`make install\`"
        local t
        t=$(time_for 300 60)
        if (( t == 0 )); then
            status=skipped; note="${INSTALL_NOTE}no environment and no time left for make install"
        else
            # fail fast without a network instead of pip's retries (5 x 15 s per package)
            PIP_DEFAULT_TIMEOUT=10 PIP_RETRIES=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
                timeout --kill-after=15 "$t" make install >>"$LOGS/install.log" 2>&1
            rc=$?
            if (( rc == 0 )) && env_ok "$REPO/.venv/bin/python"; then
                PY=$REPO/.venv/bin/python; PY_SOURCE=".venv (made by make install)"
                note="${INSTALL_NOTE}installed by make install"
            else
                status=failed
                (( rc == 124 || rc == 137 )) && status=timeout
                if [[ $net == unreachable ]]; then
                    note="${INSTALL_NOTE}make install failed for lack of network (pypi.org unreachable: no internet on this machine): no environment, the Python steps are skipped"
                elif grep -qiE 'NewConnectionError|Temporary failure in name resolution|Network is unreachable|No matching distribution|Could not find a version|Failed to establish' "$LOGS/install.log"; then
                    note="${INSTALL_NOTE}make install failed: pip could not reach its package index (network errors in logs/install.log): no environment, the Python steps are skipped"
                else
                    note="${INSTALL_NOTE}make install failed (exit status $rc; see logs/install.log): no environment, the Python steps are skipped"
                fi
            fi
        fi
    else
        note="${INSTALL_NOTE}using $PY ($PY_SOURCE)"
    fi
    tail -n 3 "$LOGS/install.log" | sed 's/^/    | /' | tee -a "$MAIN_LOG"
    record install "$status" $(( $(date +%s) - t0 )) "$rc" "$note"
}

# python_step NAME NOMINAL RESERVE SKIP_RC ARGS...: run_step with the environment's interpreter
python_step() {
    local name=$1
    if [[ -z $PY ]]; then
        if skipped "$name"; then record "$name" skipped 0 - "--skip"
        else record "$name" skipped 0 - "no Python environment (see install)"; fi
        LAST_RC=-1
        return 0
    fi
    run_step "$1" "$2" "$3" "$4" "$PY" "${@:5}"
}

# ---------------------------------------------------------------------------------------------- scripts
cat >"$WORK/device_facts.py" <<'PYEOF'
"""Device facts and PyTorch3D's rasteriser on CUDA; writes the JSON named by argv[1].
Exit status: 0 all checks passed, 3 no CUDA device (the CPU checks ran), 1 a CUDA check failed."""
import json
import platform
import sys
import time
import traceback

import torch

facts = {"python": sys.executable, "python_version": platform.python_version(), "torch": torch.__version__,
         "torch_cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
         "device_count": torch.cuda.device_count() if torch.cuda.is_available() else 0}
if facts["cuda_available"]:
    p = torch.cuda.get_device_properties(0)
    facts.update(device_name=p.name, capability=f"{p.major}.{p.minor}", device_memory_gb=round(p.total_memory / 2**30, 1),
                 cudnn=torch.backends.cudnn.version(), bf16_supported=torch.cuda.is_bf16_supported())
import pytorch3d  # noqa: E402
from pytorch3d.renderer import FoVPerspectiveCameras, MeshRasterizer, RasterizationSettings, look_at_view_transform  # noqa: E402
from pytorch3d.utils import ico_sphere  # noqa: E402

facts["pytorch3d"] = pytorch3d.__version__


def raster(device, bin_size, grad=False):
    mesh = ico_sphere(2, device)
    if grad:
        verts = mesh.verts_padded().clone().requires_grad_(True)
        mesh = mesh.update_padded(verts)
    R, T = look_at_view_transform(2.7, 10.0, 20.0, device=device)
    settings = RasterizationSettings(image_size=64, faces_per_pixel=2, bin_size=bin_size, blur_radius=1e-4 if grad else 0.0)
    t0 = time.perf_counter()
    frags = MeshRasterizer(cameras=FoVPerspectiveCameras(R=R, T=T, device=device), raster_settings=settings)(mesh)
    if grad:
        frags.zbuf[frags.pix_to_face >= 0].sum().backward()
        ok = bool(torch.isfinite(verts.grad).all() and verts.grad.abs().sum() > 0)
        return frags, ok
    if device.type == "cuda":
        torch.cuda.synchronize()
    return frags, 1000 * (time.perf_counter() - t0)


cpu = torch.device("cpu")
ref, _ = raster(cpu, 0)
binned, _ = raster(cpu, None)
check = {"cpu": "ok", "covered_pixels": int((ref.pix_to_face[..., 0] >= 0).sum()),
         "cpu_binned_pix_to_face_equal_fraction": float((binned.pix_to_face[..., 0] == ref.pix_to_face[..., 0]).float().mean()),
         "cpu_backward_ok": raster(cpu, 0, grad=True)[1]}
rc = 0
if facts["cuda_available"]:
    dev = torch.device("cuda")
    try:
        for name, bins in (("naive", 0), ("binned", None)):
            frags, ms = raster(dev, bins)
            check[f"cuda_{name}_ms"] = round(ms, 2)
            check[f"cuda_{name}_pix_to_face_equal_fraction"] = float((frags.pix_to_face[..., 0].cpu() == ref.pix_to_face[..., 0]).float().mean())
        _, check["cuda_backward_ok"] = raster(dev, None, grad=True)
        ok = check["cuda_backward_ok"] and min(check["cuda_naive_pix_to_face_equal_fraction"], check["cuda_binned_pix_to_face_equal_fraction"]) > 0.99
        check["cuda"] = "ok" if ok else "ran, but differs from the CPU or has no gradient"
        rc = 0 if ok else 1
    except Exception as exc:  # "Not compiled with GPU support" when the wheel lacks CUDA kernels
        check["cuda"] = f"error: {type(exc).__name__}: {exc}"
        traceback.print_exc()
        rc = 1
else:
    check["cuda"] = "not checked: no CUDA device"
    rc = 3
facts["pytorch3d_raster"] = check
with open(sys.argv[1], "w") as f:
    json.dump(facts, f, indent=2)
print(json.dumps(facts, indent=2))
if rc == 3:
    print("no CUDA device: CPU rasteriser checked only")
sys.exit(rc)
PYEOF

cat >"$WORK/world.py" <<'PYEOF'
"""The demo world the training benchmark reads (reused when complete)."""
import sys
import time

from hoi_adapt.synth.generator import ensure_world

t0 = time.perf_counter()
root = ensure_world("configs/synth/demo.yaml", "outputs/world/demo", workers=int(sys.argv[1]), progress=False)
print(f"world ready in {root} ({time.perf_counter() - t0:.1f} s)")
PYEOF

cat >"$WORK/summarize.py" <<'PYEOF'
"""gpu_check.{json,md} from the step table, the device facts, the junit XML and the benchmark results (stdlib only)."""
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

E = os.environ
work, results, repo = Path(E["GC_WORK"]), Path(E["GC_RESULTS"]), Path(E["GC_REPO"])
size, device = int(E["GC_SIZE"]), E["GC_DEVICE"]
kind = "cpu" if device == "cpu" else "gpu"


def num(value, fmt=".0f"):
    return "-" if value is None else format(value, fmt)


def load(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


steps = []
for line in (work / "steps.tsv").read_text().splitlines():
    name, status, seconds, rc, note = (line.split("\t") + [""] * 5)[:5]
    steps.append({"name": name, "status": status, "seconds": int(seconds) if seconds.isdigit() else None,
                  "exit_status": int(rc) if re.fullmatch(r"-?\d+", rc) else None, "note": note, "log": f"logs/{name}.log"})

smi = None
smi_file = work / "nvidia_smi.csv"
if smi_file.exists():
    rows = [r.strip() for r in smi_file.read_text().splitlines() if r.strip()]
    if len(rows) >= 2:
        keys = [k.strip() for k in rows[0].split(",")]
        smi = [dict(zip(keys, (v.strip() for v in r.split(",")), strict=False)) for r in rows[1:]]
facts = load(work / "device_facts.json")

tests = None
xml = work / "pytest_gpu.xml"
if xml.exists():
    try:
        root = ET.parse(xml).getroot()
        suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
        total = sum(int(s.get("tests", 0)) for s in suites)
        failures = sum(int(s.get("failures", 0)) for s in suites)
        errors = sum(int(s.get("errors", 0)) for s in suites)
        skipped = sum(int(s.get("skipped", 0)) for s in suites)
        tests = {"selected": total, "passed": total - failures - errors - skipped, "failed": failures, "errors": errors,
                 "skipped": skipped, "failed_tests": [f"{c.get('classname')}::{c.get('name')}" for s in suites for c in s.iter("testcase")
                                                       if c.find("failure") is not None or c.find("error") is not None],
                 "skip_reasons": sorted({(c.find("skipped").get("message") or "") for s in suites for c in s.iter("testcase")
                                         if c.find("skipped") is not None})}
    except ET.ParseError as exc:
        tests = {"error": f"junit XML unreadable: {exc}"}
log = work / "logs" / "tests.log"
if log.exists():
    m = re.search(r"(\d+) deselected", log.read_text())
    if m:
        tests = {**(tests or {}), "deselected": int(m.group(1))}

train = load(results / f"{kind}_training_{size}px.json")
infer = load(results / f"{kind}_inference.json")
cpu_train = load(repo / "experiments" / "results" / f"bench_training_{size}px.json")
throughput = {}
if train:
    throughput["training_images_per_s"] = {p: r.get("images_per_s", r.get("error")) for p, r in train["phases"].items()}
    throughput["training_peak_gpu_mb"] = {p: r["peak_gpu_mb"] for p, r in train["phases"].items() if "peak_gpu_mb" in r}
    if cpu_train and kind == "gpu":
        throughput["training_speedup_vs_committed_cpu"] = {
            p: r["images_per_s"] / cpu_train["phases"][p]["images_per_s"] for p, r in train["phases"].items()
            if "images_per_s" in r and p in cpu_train.get("phases", {})}
if infer:
    throughput["inference_img_per_s"] = {f"batch {b}": {"estimator": r["estimator_img_s"], "pipeline": r["pipeline_img_s"]}
                                         for b, r in infer["batches"].items()}
    throughput["inference_breakdown_batch1_ms"] = infer.get("breakdown_batch1_ms")

bad = [s["name"] for s in steps if s["status"] in ("failed", "timeout")]
summary = {"started": E["GC_STARTED"], "wall_s": int(E["GC_WALL"]), "budget_s": int(E["GC_BUDGET"]), "dry_run": E["GC_DRY"] == "1",
           "device": device, "size": size, "python": E.get("GC_PY") or None, "python_source": E.get("GC_PY_SOURCE") or None,
           "results_dir": str(results), "ok": not bad, "failed_steps": bad,
           "machine": {"nvidia_smi": smi, "cores": os.cpu_count(), "facts": facts},
           "steps": steps, "tests": tests, "throughput": throughput,
           "result_files": [p for p in (f"{kind}_training_{size}px.json", f"{kind}_inference.json") if (results / p).exists()]}
(results / "gpu_check.json").write_text(json.dumps(summary, indent=2) + "\n")

md = [f"# GPU check{' (DRY RUN, ' + device + ')' if summary['dry_run'] else ''}", "",
      f"Started {summary['started']}, {summary['wall_s']} s of a {summary['budget_s']} s budget; "
      f"{'all steps ok or skipped' if not bad else 'FAILED: ' + ', '.join(bad)}. "
      + (f"Python: {summary['python']} ({summary['python_source']})." if summary["python"] else "No Python environment."), ""]
if smi:
    md += ["GPU (nvidia-smi): " + "; ".join(", ".join(f"{k} {v}" for k, v in g.items()) for g in smi)]
if facts:
    r = facts.get("pytorch3d_raster", {})
    md += [f"torch {facts.get('torch')} (CUDA {facts.get('torch_cuda')}), cuda available: {facts.get('cuda_available')}, "
           f"device: {facts.get('device_name', '-')} (capability {facts.get('capability', '-')}, {facts.get('device_memory_gb', '-')} GB); "
           f"pytorch3d {facts.get('pytorch3d')}, CUDA rasteriser: {r.get('cuda')}"
           + (f" (naive {r.get('cuda_naive_ms')} ms, binned {r.get('cuda_binned_ms')} ms, backward ok: {r.get('cuda_backward_ok')})"
              if "cuda_naive_ms" in r else "") + "."]
md += ["", "| step | status | seconds | exit | note |", "|---|---|---|---|---|"]
md += [f"| {s['name']} | {s['status']} | {s['seconds']} | {s['exit_status']} | {s['note'].replace('|', '/')} |" for s in steps]
if tests:
    md += ["", "Tests `pytest -m gpu`: " + ", ".join(f"{k} {tests[k]}" for k in ("passed", "failed", "errors", "skipped", "deselected") if k in tests)
           + (f"; failed: {', '.join(tests['failed_tests'])}" if tests.get("failed_tests") else "")
           + (f"; skip reasons: {', '.join(tests['skip_reasons'])}" if tests.get("skip_reasons") else "")]
if train:
    md += ["", f"Training, {size} px, {device} (images/s per phase; `{kind}_training_{size}px.md`):", "",
           "| phase | images/s | s/step | peak GPU (MB) | vs committed CPU |", "|---|---|---|---|---|"]
    for p, r in train["phases"].items():
        if "error" in r:
            md.append(f"| {p} | failed: {r['error']} | | | |")
            continue
        sp = throughput.get("training_speedup_vs_committed_cpu", {}).get(p)
        md.append(f"| {p} | {r['images_per_s']:.1f} | {r['s_per_step']:.3f} | {num(r.get('peak_gpu_mb'))} | "
                  + (f"{sp:.1f}x" if sp else "-") + " |")
if infer:
    md += ["", f"Inference, {infer['image_size']} px, {device}, eager PyTorch (`{kind}_inference.md`):", "",
           "| batch | E img/s | pipeline img/s | peak GPU (MB) |", "|---|---|---|---|"]
    md += [f"| {b} | {r['estimator_img_s']:.1f} | {r['pipeline_img_s']:.1f} | {num(r.get('peak_gpu_mb'))} |"
           for b, r in infer["batches"].items()]
    if infer.get("breakdown_batch1_ms"):
        md += ["", "Batch-1 breakdown (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in infer["breakdown_batch1_ms"].items())]
for s in steps:
    if s["status"] in ("failed", "timeout"):
        path = work / s["log"]
        tail = path.read_text(errors="replace").splitlines()[-25:] if path.exists() else []
        md += ["", f"## {s['name']}: {s['status']} (last lines of {s['log']})", "", "```", *tail, "```"]
md += ["", "Command: `bash experiments/gpu_check.sh" + (" --dry-run" if summary["dry_run"] else "") + "`; logs in $OUT/gpu_check_logs/ when $OUT is set."]
(results / "gpu_check.md").write_text("\n".join(md) + "\n")
print("\n".join(md))
PYEOF

on_signal() {
    record interrupted failed $(( $(date +%s) - START )) 130 "the check was interrupted by a signal"
    finish
    exit 130
}
trap on_signal INT TERM

# ---------------------------------------------------------------------------------------------- summary
finish() {
    trap - INT TERM
    local wall=$(( $(date +%s) - START )) spy=""
    for c in "$PY" python3 python; do
        [[ -n $c ]] && command -v "$c" >/dev/null 2>&1 && { spy=$c; break; }
    done
    log "summary: writing $RESULTS_DIR/gpu_check.{json,md}"
    local ok=0
    if [[ -n $spy ]]; then
        GC_WORK=$WORK GC_RESULTS=$RESULTS_DIR GC_REPO=$REPO GC_SIZE=$SIZE GC_DEVICE=$DEVICE GC_STARTED=$STARTED_ISO GC_WALL=$wall \
            GC_BUDGET=$BUDGET GC_DRY=$DRY_RUN GC_PY=$PY GC_PY_SOURCE=$PY_SOURCE \
            timeout 60 "$spy" "$WORK/summarize.py" >"$LOGS/summary.log" 2>&1 && ok=1
    fi
    if (( ! ok )); then  # no Python at all, or the summary failed: the step table as it is
        log "summary: no Python summary ($(tail -n 1 "$LOGS/summary.log" 2>/dev/null)); writing a plain one"
        {
            printf '{"started": "%s", "wall_s": %s, "dry_run": %s, "summary_error": true, "steps": [' "$STARTED_ISO" "$wall" "$( ((DRY_RUN)) && echo true || echo false)"
            awk -F'\t' '{gsub(/["\\]/, "", $5); printf "%s{\"name\": \"%s\", \"status\": \"%s\", \"seconds\": \"%s\", \"exit_status\": \"%s\", \"note\": \"%s\"}", (NR>1?", ":""), $1, $2, $3, $4, $5}' "$STEPS_TSV"
            printf ']}\n'
        } >"$RESULTS_DIR/gpu_check.json"
        { echo "# GPU check (plain summary: the Python summary did not run)"; echo; echo '| step | status | seconds | exit | note |'; echo '|---|---|---|---|---|'
          awk -F'\t' '{printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5}' "$STEPS_TSV"; } >"$RESULTS_DIR/gpu_check.md"
    else
        cat "$RESULTS_DIR/gpu_check.md"
    fi
    if [[ -n ${OUT:-} ]]; then
        mkdir -p "$OUT/gpu_check_logs" &&
            cp -f "$RESULTS_DIR"/gpu_check.json "$RESULTS_DIR"/gpu_check.md "$OUT"/ &&
            cp -f "$LOGS"/*.log "$OUT/gpu_check_logs/" 2>/dev/null
        local kind=gpu
        [[ $DEVICE == cpu ]] && kind=cpu
        for f in "$RESULTS_DIR/${kind}_training_${SIZE}px".{json,md} "$RESULTS_DIR/${kind}_inference".{json,md} \
                 "$WORK/pytest_gpu.xml" "$WORK/device_facts.json" "$WORK/nvidia_smi.csv"; do
            [[ -f $f ]] && cp -f "$f" "$OUT"/
        done
        log "summary: copied the results and logs to $OUT"
    fi
    log "done in $(( $(date +%s) - START ))s; results in $RESULTS_DIR (logs: $LOGS)"
}

# ---------------------------------------------------------------------------------------------- the run
log "gpu_check: repo $REPO, results $RESULTS_DIR, work $WORK, budget ${BUDGET}s, dry run: $DRY_RUN, $CORES cores"

# 1. install / locate the environment
step_install

# 2. device facts
if skipped smi; then
    record smi skipped 0 - "--skip"
elif command -v nvidia-smi >/dev/null 2>&1; then
    run_step smi 30 200 -1 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    cp -f "$LOGS/smi.log" "$WORK/nvidia_smi.csv"
    grep -v '^\s*$' "$LOGS/smi.log" | head -n 3 | sed 's/^/    /' | tee -a "$MAIN_LOG"
elif (( DRY_RUN )); then
    record smi skipped 0 - "nvidia-smi not found (dry run)"
else
    record smi failed 0 127 "nvidia-smi not found"
fi
# SKIP_RC 3 = no CUDA device: expected in a dry run on a CPU machine, a failure on the GPU machine
python_step facts 120 200 "$( ((DRY_RUN)) && echo 3 || echo -1)" "$WORK/device_facts.py" "$WORK/device_facts.json"
if [[ -f $WORK/device_facts.json ]] && grep -q '"cuda_available": true' "$WORK/device_facts.json"; then CUDA_OK=1; fi
if [[ -z $DEVICE ]]; then
    DEVICE=cuda
    (( DRY_RUN && ! CUDA_OK )) && DEVICE=cpu
fi
log "benchmarks on device $DEVICE (CUDA seen by torch: $CUDA_OK)"

# 3. the tests marked gpu (tests/test_render.py, tests/test_gan_losses.py at the time of writing): only the files that
#    carry the marker are collected (faster, and a broken unrelated test module cannot fail the step)
mapfile -t GPU_TEST_FILES < <(grep -lE 'pytest\.mark\.gpu|pytestmark.*gpu' tests/test_*.py 2>/dev/null)
log "tests marked gpu in: ${GPU_TEST_FILES[*]:-(none found by grep: running pytest -m gpu on all of tests/)}"
python_step tests 150 180 -1 -m pytest -m gpu -q -p no:cacheprovider --junitxml "$WORK/pytest_gpu.xml" "${GPU_TEST_FILES[@]}"

# 4. training throughput per phase (the world first, in its own step)
python_step world 150 180 -1 "$WORK/world.py" "$CORES"
python_step train 240 140 -1 experiments/bench_training.py --device "$DEVICE" --size "$SIZE" --steps "$TRAIN_STEPS" \
    --workers "$TRAIN_WORKERS" --results-dir "$RESULTS_DIR"

# 5. inference throughput
python_step infer 150 20 -1 experiments/bench_inference.py --device "$DEVICE" --size "$SIZE" --batch-sizes "$BATCH_SIZES" \
    --repeats "$INFER_REPEATS" --images "$INFER_IMAGES" --threads "$INFER_THREADS" --results-dir "$RESULTS_DIR"

# 7. summary (6, a full-scale training run, is not part of the check)
finish
if cut -f2 "$STEPS_TSV" | grep -qE '^(failed|timeout)$'; then exit 1; fi
exit 0
