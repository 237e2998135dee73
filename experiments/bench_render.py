"""Benchmark the PyTorch3D renderer: forward and forward+backward for a batch of hands.

Renders a batch of 16 hands at 64/128/256 px as a soft silhouette (training loss), a hard depth map, the
generator guidance (silhouette + depth + shaded, one soft pass) and, at 128 px, the joined hand+object
shaded pass with 4 layers; on CPU and, if present, CUDA. At 64 px on CPU it also times the silhouette with
PyTorch3D's own backward (``grad_mode="pytorch3d"``) to show what the torch gradient path saves, and it times
PyTorch3D's CPU rasteriser alone on 250-4000 faces at 1x1 and 16x16 px (its fixed cost per face). Prints a
table and writes ``experiments/results/bench_render.json`` and ``.md`` (with the machine description).

Usage::

    .venv/bin/python experiments/bench_render.py [--repeats 3] [--sizes 64 128 256] [--batch 16]
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from pytorch3d.utils import ico_sphere

from hoi_adapt.render import HandObjectRenderer
from hoi_adapt.utils.bench import RESULTS, machine_info, write_result_files


def standin_hand() -> tuple[torch.Tensor, torch.Tensor]:
    """A MANO-sized stand-in: 777-vertex, 1538-face elongated ellipsoid, open at the 'wrist' like MANO."""
    lon, rings = 31, 25
    theta = torch.linspace(0, math.pi, rings + 2)[1:-1]
    phi = torch.arange(lon) * (2 * math.pi / lon)
    ring = torch.stack(
        [theta.sin()[:, None] * phi.cos(), theta.sin()[:, None] * phi.sin(), theta.cos()[:, None].expand(-1, lon)], -1
    ).reshape(-1, 3)
    verts = torch.cat([torch.tensor([[0.0, 0.0, 1.0]]), ring, torch.tensor([[0.0, 0.0, -1.0]])])
    idx = lambda r, c: 1 + r * lon + c % lon  # noqa: E731
    faces = [[0, idx(0, c), idx(0, c + 1)] for c in range(lon)]
    for r in range(rings - 1):
        for c in range(lon):
            faces += [[idx(r, c), idx(r + 1, c), idx(r + 1, c + 1)], [idx(r, c), idx(r + 1, c + 1), idx(r, c + 1)]]
    south = len(verts) - 1
    faces += [[south, idx(rings - 1, c + 1), idx(rings - 1, c)] for c in range(lon)]
    faces_t = torch.tensor(faces[:1538])  # drop 12 cap faces: a 'wrist' hole, and MANO's face count
    # z is the long axis above; make it the hand's length along image x.
    verts = verts[:, [2, 0, 1]] * torch.tensor([0.09, 0.045, 0.025])
    return verts, faces_t


def face_camera(verts: torch.Tensor) -> torch.Tensor:
    """Centre the mesh and rotate it so its thinnest extent points along z (e.g. palm towards the camera)."""
    centred = verts - verts.mean(0)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)  # rows: principal axes, largest first
    if torch.det(vh) < 0:
        vh[2] = -vh[2]  # a proper rotation keeps the faces' outward winding
    return centred @ vh.T


def hand_mesh() -> tuple[torch.Tensor, torch.Tensor, str]:
    """The real hand model at its mean pose if importable, else the stand-in."""
    try:
        from hoi_adapt.hand.model import HandModel  # noqa: PLC0415 (optional, written in parallel)

        model = HandModel()
        out = model(torch.zeros(1, 3), torch.zeros(1, 45), torch.zeros(1, 10), torch.zeros(1, 3))
        verts = out.vertices[0].detach()
        faces = torch.as_tensor(model.faces, dtype=torch.int64)
        return face_camera(verts), faces, "hoi_adapt.hand.model.HandModel (flat pose, palm turned to the camera)"
    except Exception as exc:  # noqa: BLE001 - any failure means: use the stand-in, and say so
        print(f"note: hand model unavailable ({type(exc).__name__}: {exc}); using a 1538-face stand-in mesh")
        verts, faces = standin_hand()
        return verts, faces, "stand-in ellipsoid (777 verts, 1538 faces)"


def batch_scene(verts: torch.Tensor, batch: int, size: int, device: torch.device):
    gen = torch.Generator().manual_seed(0)
    angles = (torch.rand(batch, generator=gen) - 0.5) * 0.8
    c, s = angles.cos(), angles.sin()
    rot = torch.zeros(batch, 3, 3)
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1], rot[:, 2, 2] = c, -s, s, c, 1.0
    jitter = (torch.rand(batch, 3, generator=gen) - 0.5) * torch.tensor([0.02, 0.02, 0.04])
    transl = torch.tensor([0.0, 0.0, 0.4]) + jitter
    hands = torch.einsum("bij,vj->bvi", rot, verts) + transl[:, None]
    K = torch.tensor([[1.3 * size, 0.0, (size - 1) / 2], [0.0, 1.3 * size, (size - 1) / 2], [0.0, 0.0, 1.0]])
    return hands.to(device), K.expand(batch, 3, 3).to(device), transl.to(device)


def timeit(fn: Callable[[], None], repeats: int, device: torch.device) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def per_face_cost(repeats: int) -> list[dict]:
    """Seconds of one call of PyTorch3D's CPU rasteriser on F small random faces at 1x1 and 16x16 px, 1 thread.

    Why: its naive CPU path fills per-face bounding boxes and areas element by element before the pixel loop,
    a fixed cost per face handed to it whatever the resolution; that is what tiling and back-face culling
    (``render/tiled.py``) cut, and what bounds the mesh guidance's speed on CPU.
    """
    from pytorch3d import _C

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    rows = []
    for faces in (250, 1000, 4000):
        centre = torch.rand(faces, 1, 3, generator=gen) * torch.tensor([2.0, 2.0, 1.0]) - torch.tensor([1.0, 1.0, -1.0])
        face_verts = centre + 0.05 * (torch.rand(faces, 3, 3, generator=gen) - 0.5)
        for px in (1, 16):
            args = (face_verts, torch.tensor([0]), torch.tensor([faces]), torch.full((faces,), -1), (px, px), 0.0, 1, 0, 0,
                    True, False, False)
            t = timeit(lambda a=args: _C.rasterize_meshes(*a), repeats, torch.device("cpu"))
            rows.append({"faces": faces, "px": px, "ms": round(1000 * min(t), 3), "us_per_face": round(1e6 * min(t) / faces, 2)})
            print(f"pytorch3d CPU rasteriser: {faces:5d} faces at {px:2d}x{px:<2d} px  {1000 * min(t):7.2f} ms", flush=True)
    torch.set_num_threads(threads)
    return rows


def run(args: argparse.Namespace) -> dict:
    load_at_start = load_average()
    verts, faces, mesh_name = hand_mesh()
    obj = ico_sphere(2)  # 320 faces
    obj_v, obj_f = obj.verts_packed() * 0.035, obj.faces_packed()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        f_dev = faces.to(device)
        for size in args.sizes:
            hands, K, transl = batch_scene(verts, args.batch, size, device)
            r = HandObjectRenderer(image_size=(size, size), faces_per_pixel=1)
            cases: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
                "silhouette": lambda v: r.soft_silhouette(v, f_dev, K).sum(),
                "depth": lambda v: r(v, f_dev, K).depth.sum(),
                "guidance": lambda v: sum(x.sum() for x in r.render_guidance(v, f_dev, K).values()),
            }
            if size == 64 and device.type == "cpu":
                # For comparison: PyTorch3D's own CPU backward (what grad_mode="auto" avoids on CPU).
                rp = HandObjectRenderer(image_size=(size, size), faces_per_pixel=1, grad_mode="pytorch3d")
                cases["silhouette_p3d_bwd"] = lambda v: rp.soft_silhouette(v, f_dev, K).sum()
            if size == 128:
                r4 = HandObjectRenderer(image_size=(size, size), faces_per_pixel=4)
                # Object in front of each hand's middle, so the 4 layers are really used.
                front = torch.tensor([0.0, 0.0, -0.05], device=device)
                ov = [obj_v.to(device) + transl[b] + front for b in range(args.batch)]
                of = [obj_f.to(device)] * args.batch
                cases["joined_shaded_fpp4"] = lambda v: (
                    lambda o: o.image.sum() + o.hand_image.sum() + o.depth.sum()
                )(r4(v, f_dev, K, ov, of))
            for name, loss_fn in cases.items():
                def fwd() -> None:
                    with torch.no_grad():
                        loss_fn(hands)

                def fwd_bwd() -> None:
                    v = hands.detach().requires_grad_(True)
                    loss_fn(v).backward()

                all_f = timeit(fwd, args.repeats, device)
                all_fb = timeit(fwd_bwd, args.repeats, device)
                t_f, t_fb = statistics.median(all_f), statistics.median(all_fb)
                row = {"device": device.type, "pass": name, "size": size, "batch": args.batch,
                       "faces_per_pixel": 4 if name.startswith("joined") else (
                           1 if name == "depth" else r.silhouette_faces_per_pixel),
                       "grad_mode": "pytorch3d" if name.endswith("p3d_bwd") else r.resolved_grad_mode(device),
                       "forward_s": round(t_f, 4), "forward_backward_s": round(t_fb, 4),
                       "forward_min_s": round(min(all_f), 4), "forward_backward_min_s": round(min(all_fb), 4),
                       "forward_all_s": [round(t, 4) for t in all_f],
                       "forward_backward_all_s": [round(t, 4) for t in all_fb]}
                rows.append(row)
                print(f"{device.type:5s} {name:18s} {size:4d}px  fwd {t_f:7.3f} s (min {min(all_f):6.3f})   "
                      f"fwd+bwd {t_fb:7.3f} s (min {min(all_fb):6.3f})", flush=True)
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine_info(),
        "hand_mesh": f"{mesh_name}; {verts.shape[0]} verts, {faces.shape[0]} faces",
        "object_mesh": f"ico_sphere(2): {obj_v.shape[0]} verts, {obj_f.shape[0]} faces",
        "settings": {"sigma": r.sigma, "silhouette_blur_radius": r.silhouette_blur_radius,
                     "bin_size": "auto (0 on CPU, heuristic on CUDA)", "repeats": args.repeats,
                     "statistic": "median and min after one warm-up",
                     "load_average_at_start": load_at_start, "load_average_at_end": load_average()},
        "rows": rows,
        "per_face_cost": per_face_cost(max(args.repeats, 5)),
    }


def to_markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Renderer benchmark (`experiments/bench_render.py`)", "",
        f"Command: `{result['command']}`  ",
        f"Machine: {m['cpu']}, {m['cores']} CPUs, torch threads {m['torch_threads']}, CUDA: {m['cuda']}; "
        f"torch {m['torch']}, pytorch3d {m['pytorch3d']}, Python {m['python']}  ",
        f"Hand: {result['hand_mesh']}; object: {result['object_mesh']}  ",
        f"Settings: {result['settings']}", "",
        "Times: median (min) over the repeats, seconds per batch. On a shared machine the min is the more",
        "reliable figure (other jobs inflate medians).", "",
        "| device | pass | px | batch | faces/px | grad mode | forward (s) | forward+backward (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['device']} | {r['pass']} | {r['size']} | {r['batch']} | {r['faces_per_pixel']} | "
                     f"{r['grad_mode']} | {r['forward_s']:.3f} ({r['forward_min_s']:.3f}) | "
                     f"{r['forward_backward_s']:.3f} ({r['forward_backward_min_s']:.3f}) |")
    lines += ["", "PyTorch3D's CPU rasteriser alone (`pytorch3d._C.rasterize_meshes`, 1 thread, 1 layer, no blur), small random",
              "faces, best of the repeats: a fixed cost per face handed to it, whatever the resolution.", "",
              "| faces | image px | ms | us per face |", "|---|---|---|---|"]
    lines += [f"| {r['faces']} | {r['px']}x{r['px']} | {r['ms']:.2f} | {r['us_per_face']:.2f} |" for r in result.get("per_face_cost", [])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_render.json")
    args = parser.parse_args(argv)
    result = run(args)
    write_result_files(args.out, result, to_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
