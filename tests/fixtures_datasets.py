"""Writers of tiny datasets in the exact on-disk formats of datasets.md §3-§10, with their quirks.

Every writer fabricates ground truth first (3D joints in the OpenCV colour-camera frame, metres, OpenPose
order, and their pixel projections), then encodes it the way the dataset stores it (units, camera frame,
joint order, invalid markers, file layout) and draws a red dot at one keypoint of each image, so a test
can check that the loader's 2D keypoint lands on the dot after cropping and mirroring. Each writer
returns a ``truth`` dict describing what it wrote.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hoi_adapt.hand import joint_maps

DOT_RGB = (255, 0, 0)
BACKGROUND = 40


# ----------------------------------------------------------------------------------------- helpers
def backproject(K: np.ndarray, uv: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Camera-frame points (same units as z) whose projections with K are ``uv``."""
    uv1 = np.concatenate([np.asarray(uv, float), np.ones((len(uv), 1))], axis=1)
    return (uv1 @ np.linalg.inv(K).T) * np.asarray(z, float)[:, None]


def project(K: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    p = np.asarray(xyz, float) @ np.asarray(K, float).T
    return p[:, :2] / p[:, 2:3]


def canvas(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A dark, slightly noisy RGB background (no red pixels)."""
    rng = np.random.default_rng(seed)
    img = np.full((height, width, 3), BACKGROUND, np.uint8)
    img += rng.integers(0, 12, size=img.shape, dtype=np.uint8)
    return img


def draw_dot(img: np.ndarray, uv: np.ndarray, radius: int = 2, color: tuple[int, int, int] = DOT_RGB) -> None:
    """A (2r+1)^2 square centred on the pixel nearest ``uv`` (in place; RGB image)."""
    u, v = int(round(float(uv[0]))), int(round(float(uv[1])))
    h, w = img.shape[:2]
    img[max(0, v - radius):min(h, v + radius + 1), max(0, u - radius):min(w, u + radius + 1)] = color


def write_rgb(path: Path, img: np.ndarray, quality: int = 98) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    assert cv2.imwrite(str(path), np.ascontiguousarray(img[:, :, ::-1]), params)


def write_raw(path: Path, arr: np.ndarray) -> None:
    """Write an array as-is with OpenCV (channel order as given, i.e. BGR for 3 channels)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), arr)


def write_pickle(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def hand_uv_layout(center: tuple[float, float], spread: float) -> np.ndarray:
    """21 OpenPose 2D points of a spread hand (wrist at the bottom, fingers up), all distinct."""
    cx, cy = center
    pts = [(cx, cy + spread)]
    for f, dx in enumerate((-1.0, -0.5, 0.0, 0.5, 1.0)):
        for k in range(1, 5):
            pts.append((cx + dx * spread * (0.3 + 0.15 * k), cy + spread - k * spread * 0.45 - (0.1 if f == 2 else 0.0)))
    return np.asarray(pts, float)


def fmt(v: float) -> str:
    return "nan" if not np.isfinite(v) else f"{v:.6f}"


# ----------------------------------------------------------------------------------- Dexter+Object
def write_dexter_object(root: Path, frames: int = 2, size: tuple[int, int] = (64, 48)) -> dict[str, Any]:
    """All 6 sequences; lines with 8 entries; Grasp1 frame 1 has a 32001 tip and a NaN tip."""
    from hoi_adapt.data.datasets import dexter_object as D

    w, h = size
    truth: dict[str, Any] = {"size": size, "frames": {}}
    E = D.EXTR_DEPTH_TO_COLOR
    negate = np.diag([-1.0, -1.0, 1.0])
    for s_i, seq in enumerate(D.SEQUENCES):
        seq_dir = root / "data" / seq
        lines3d, lines2d = [], []
        for f in range(frames):
            rng = np.random.default_rng(100 * s_i + f)
            uv = np.stack([rng.uniform(0.25 * w, 0.75 * w, 5), rng.uniform(0.25 * h, 0.75 * h, 5)], axis=1)
            uv[1] = np.round(uv[1])  # the dot tip (index) sits on a pixel centre
            z = rng.uniform(0.35, 0.5, 5)
            xyz_c = backproject(D.K_COLOR, uv, z)  # metres, colour frame
            p_mm = 1000.0 * xyz_c
            raw = (np.linalg.solve(E[:, :3], (p_mm - E[:, 3]).T).T) @ negate.T  # depth frame, before x/y negation
            valid = np.ones(5, bool)
            entries = [", ".join(fmt(c) for c in p) for p in raw]
            if seq == "Grasp1" and f == 1:
                entries[2] = f"{raw[2, 0]:.3f}, {raw[2, 1]:.3f}, 32001"
                entries[3] = "nan, nan, nan"
                valid[[2, 3]] = False
            extra = ["1.0, 2.0, 3.0", "4.0,5.0,6.0", "7.0, 8.0, 9.0"]  # "object" entries beyond the 5 tips
            lines3d.append(";".join(entries + extra) + ";")
            lines2d.append(";".join(f"{a:.2f}, {b:.2f}" for a, b in uv) + ";")
            img = canvas(h, w, seed=100 * s_i + f)
            draw_dot(img, uv[1])
            write_rgb(seq_dir / "color" / f"{f:05d}.png", img)
            write_raw(seq_dir / "depth" / f"{f:05d}.png", np.zeros((h // 2, w // 2), np.uint16))
            truth["frames"][(seq, f)] = {"uv": uv, "xyz": xyz_c, "valid": valid, "dot_tip": 1}
        (seq_dir / "annotations").mkdir(parents=True, exist_ok=True)
        (seq_dir / "annotations" / f"{seq}3D.txt").write_text("\n".join(lines3d) + "\n\n")
        (seq_dir / "annotations" / f"{seq}2D.txt").write_text("\n".join(lines2d) + "\n")
    (root / "calibration").mkdir(parents=True, exist_ok=True)
    return truth


# ----------------------------------------------------------------------------------------- EgoDexter
def write_egodexter(root: Path, frames: int = 3, size: tuple[int, int] = (128, 96)) -> dict[str, Any]:
    """All 4 sequences; Desk: frame 1 has a ``0, 0, 0`` tip and a ``-1,-1`` 2D tip, frame 2 is a short line."""
    from hoi_adapt.data.datasets import egodexter as ED

    w, h = size
    E = ED.EXTR_DEPTH_TO_COLOR
    truth: dict[str, Any] = {"size": size, "frames": {}}
    for s_i, seq in enumerate(ED.SEQUENCES):
        seq_dir = root / "data" / seq
        lines3d, lines2d = [], []
        for f in range(frames):
            rng = np.random.default_rng(7 + 10 * s_i + f)
            # colour targets chosen so the depth-camera projections also fall inside the image
            uv = np.stack([rng.uniform(0.35 * w, 0.55 * w, 5), rng.uniform(0.15 * h, 0.4 * h, 5)], axis=1)
            uv[1] = np.round(uv[1])
            z = rng.uniform(0.38, 0.45, 5)
            xyz_c = backproject(ED.K_COLOR, uv, z)
            p_d_mm = np.linalg.solve(E[:, :3], (1000.0 * xyz_c - E[:, 3]).T).T
            uv_d = project(ED.K_DEPTH, p_d_mm)
            assert (uv_d[:, 0] > 2).all() and (uv_d[:, 0] < w - 3).all() and (uv_d[:, 1] > 2).all() and (uv_d[:, 1] < h - 3).all()
            valid3 = np.ones(5, bool)
            valid2 = np.ones(5, bool)
            e3 = [", ".join(f"{c:.6f}" for c in p) for p in p_d_mm]
            e2 = [f"{a:.6f},{b:.6f}" for a, b in uv_d]
            if seq == "Desk" and f == 1:
                e3[4] = "0, 0, 0"
                e2[0] = "-1,-1"
                valid3[4] = False
                valid2[0] = False
            if seq == "Desk" and f == 2:
                e3 = e3[:3]  # short line: the whole frame is missing
                valid3[:] = False
            lines3d.append(";".join(e3) + ";")
            lines2d.append(";".join(e2) + ";")
            img = canvas(h, w, seed=7 + 10 * s_i + f)
            draw_dot(img, uv[1])
            write_rgb(seq_dir / "color" / f"image_{f:05d}_color.png", img)
            img_d = canvas(h, w, seed=99 + f)
            draw_dot(img_d, uv_d[1])
            write_rgb(seq_dir / "color_on_depth" / f"image_{f:05d}_color_on_depth.png", img_d)
            truth["frames"][(seq, f)] = {"uv": uv, "xyz": xyz_c, "valid3": valid3, "valid2": valid2, "uv_depth": uv_d,
                                         "xyz_depth": p_d_mm / 1000.0, "dot_tip": 1}
        (seq_dir / "annotation.txt_3D.txt").write_text("\n".join(lines3d) + "\n")
        (seq_dir / "annotation.txt").write_text("\n".join(lines2d) + "\n")
    return truth


# ----------------------------------------------------------------------------------------------- STB
def write_stb(root: Path, sequences: tuple[str, ...] = ("B1Counting", "B1Random"), frames: int = 2,
              size: tuple[int, int] = (64, 48), layout: str = "images", with_bb: bool = False) -> dict[str, Any]:
    """``labels/<Seq>_SK.mat`` (handPara (3,21,N), mm, depth frame, STB order) + SK colour PNGs (+ BB)."""
    import scipy.io
    from scipy.spatial.transform import Rotation

    from hoi_adapt.data.datasets import stb as S

    w, h = size
    R = Rotation.from_rotvec(S.SK_ROT_VEC).as_matrix()  # independent of cv2.Rodrigues
    truth: dict[str, Any] = {"size": size, "frames": {}, "R": R}
    op_from_stb = joint_maps.to_openpose_index("stb")
    for s_i, seq in enumerate(sequences):
        img_dir = (root / "images" / seq) if layout == "images" else (root / seq)
        para = np.zeros((3, 21, frames))
        para_bb = np.zeros((3, 21, frames))
        for f in range(frames):
            uv = hand_uv_layout((w * (0.45 + 0.05 * f), h * 0.45), spread=min(w, h) * 0.28)  # OpenPose order
            uv[8] = np.round(uv[8])
            z = 0.45 + 0.01 * np.arange(21)
            xyz_c = backproject(S.K_SK, uv, z)  # colour frame, metres, OpenPose order; joint 0 plays the palm
            xyz_d_mm = (1000.0 * xyz_c) @ R.T + S.SK_T_MM  # X_d = R X_c + T
            stb = np.empty_like(xyz_d_mm)
            stb[op_from_stb] = xyz_d_mm  # OpenPose -> STB order (involution)
            para[:, :, f] = stb.T
            img = canvas(h, w, seed=s_i * 10 + f)
            draw_dot(img, uv[8])
            write_rgb(img_dir / f"SK_color_{f}.png", img)
            truth["frames"][(seq, f)] = {"uv": uv, "xyz": xyz_c, "dot_joint": 8}
            if with_bb:
                # far away (4 m) so the 120 mm baseline disparity (~25 px) keeps the hand in both tiny images
                uvb = hand_uv_layout((w * 0.75, h * 0.5), spread=min(w, h) * 0.25)
                uvb[8] = np.round(uvb[8])
                xyz_l = backproject(S.K_BB, uvb, 4.0 + 0.01 * np.arange(21))
                bb = np.empty_like(xyz_l)
                bb[op_from_stb] = 1000.0 * xyz_l
                para_bb[:, :, f] = bb.T
                img_l = canvas(h, w, seed=500 + f)
                draw_dot(img_l, uvb[8])
                write_rgb(img_dir / f"BB_left_{f}.png", img_l)
                xyz_r = xyz_l - np.array([S.BB_BASELINE_MM / 1000.0, 0, 0])
                uvr = project(S.K_BB, xyz_r)
                img_r = canvas(h, w, seed=600 + f)
                draw_dot(img_r, uvr[8])
                write_rgb(img_dir / f"BB_right_{f}.png", img_r)
                truth["frames"][(seq, f, "BB")] = {"xyz_left": xyz_l, "xyz_right": xyz_r, "uv_left": uvb, "uv_right": uvr}
        label_dir = root / "labels" if layout == "images" else root
        label_dir.mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(str(label_dir / f"{seq}_SK.mat"), {"handPara": para})
        if with_bb:
            scipy.io.savemat(str(label_dir / f"{seq}_BB.mat"), {"handPara": para_bb})
    return truth


# ----------------------------------------------------------------------------------------------- RHD
def write_rhd(root: Path, split: str = "training", size: int = 320) -> dict[str, Any]:
    """Dict-of-dicts pickle (int keys, 42 joints, left rows 0-20), label masks 0/1/2-17/18-33."""
    from hoi_adapt.data.datasets import rhd as RH

    K = np.array([[size * 0.9, 0, size / 2 - 0.5], [0, size * 0.9, size / 2 - 0.5], [0, 0, 1.0]])
    split_dir = root / split
    anno: dict[int, dict[str, np.ndarray]] = {}
    truth: dict[str, Any] = {"K": K, "samples": {}}
    rhd_from_op = joint_maps.from_openpose_index("rhd")
    # sample 0: left more visible; sample 1: right more visible; sample 2: left more visible keypoints but
    # right has more mask pixels (so hand_select="mask" disagrees).
    for sid in range(3):
        uv_l = hand_uv_layout((size * 0.3, size * 0.5), size * 0.12)
        uv_r = hand_uv_layout((size * 0.7, size * 0.5), size * (0.2 if sid == 2 else 0.12))
        uv_l[8] = np.round(uv_l[8])
        uv_r[8] = np.round(uv_r[8])
        z = 0.6 + 0.005 * np.arange(21)
        xyz_l, xyz_r = backproject(K, uv_l, z), backproject(K, uv_r, z + 0.02)
        vis_l = np.ones(21) if sid != 1 else np.r_[np.ones(5), np.zeros(16)]
        vis_r = np.r_[np.ones(8), np.zeros(13)] if sid != 1 else np.ones(21)
        uv_vis = np.zeros((42, 3))
        xyz = np.zeros((42, 3))
        uv_vis[:21, :2], uv_vis[:21, 2], xyz[:21] = uv_l[rhd_from_op], vis_l[rhd_from_op], xyz_l[rhd_from_op]
        uv_vis[21:, :2], uv_vis[21:, 2], xyz[21:] = uv_r[rhd_from_op], vis_r[rhd_from_op], xyz_r[rhd_from_op]
        anno[sid] = {"uv_vis": uv_vis, "xyz": xyz, "K": K}
        labels = np.zeros((size, size), np.uint8)
        labels[size // 8: size - size // 8, size // 10: size - size // 10] = 1  # person
        for uv, (lo, hi), grow in ((uv_l, RH.LEFT_LABELS, 1.0), (uv_r, RH.RIGHT_LABELS, 3.0 if sid == 2 else 1.0)):
            x0, y0 = np.floor(uv.min(0)).astype(int) - int(4 * grow)
            x1, y1 = np.ceil(uv.max(0)).astype(int) + int(4 * grow)
            labels[max(y0, 0):y1, max(x0, 0):x1] = lo
            labels[max(y0, 0):(y0 + y1) // 2, max(x0, 0):x1] = hi - 1  # a second part id of the same hand
        left_more_vis = vis_l.sum() > vis_r.sum()
        chosen_uv = uv_l if left_more_vis else uv_r
        img = canvas(size, size, seed=sid)
        draw_dot(img, chosen_uv[8], radius=3)
        write_rgb(split_dir / "color" / f"{sid:05d}.png", img)
        write_raw(split_dir / "mask" / f"{sid:05d}.png", labels)
        depth = np.zeros((size, size, 3), np.uint8)
        write_raw(split_dir / "depth" / f"{sid:05d}.png", depth)
        truth["samples"][sid] = {"left": bool(left_more_vis), "uv": chosen_uv,
                                 "xyz": xyz_l if left_more_vis else xyz_r, "labels": labels,
                                 "mask_left": bool(((labels >= 2) & (labels <= 17)).sum() > (labels >= 18).sum())}
    write_pickle(split_dir / f"anno_{split}.pickle", anno)
    return truth


# ------------------------------------------------------------------------------------------ FreiHAND
def write_freihand(root: Path, n: int = 3, size: int = 64, n_eval: int = 2, eval_labels: bool = False) -> dict[str, Any]:
    """JSON lists (K, xyz, mano (1,61), scale), 4 image versions id = idx + n*k, JPEG masks."""
    truth: dict[str, Any] = {"n": n, "size": size, "samples": {}}
    Ks, xyzs, manos, scales = [], [], [], []
    for idx in range(n):
        K = np.array([[size * 2.0 + idx, 0, size / 2 + idx], [0, size * 2.0 - idx, size / 2 - idx], [0, 0, 1.0]])
        uv = hand_uv_layout((size * 0.5, size * 0.45), size * 0.25)
        uv[12] = np.round(uv[12])
        xyz = backproject(K, uv, 0.5 + 0.004 * np.arange(21))
        theta = np.zeros(61)
        theta[:48] = np.linspace(-0.3, 0.3, 48) + 0.01 * idx
        theta[48:58] = np.linspace(-1, 1, 10)
        Ks.append(K.tolist())
        xyzs.append(xyz.tolist())
        manos.append([theta.tolist()])
        scales.append(float(np.linalg.norm(xyz[9] - xyz[10])))
        mask = np.zeros((size, size), np.uint8)
        lo, hi = np.floor(uv.min(0)).astype(int) - 2, np.ceil(uv.max(0)).astype(int) + 2
        mask[lo[1]:hi[1], lo[0]:hi[0]] = 255
        write_raw(root / "training" / "mask" / f"{idx:08d}.jpg", np.stack([mask] * 3, axis=2))
        for k in range(4):
            img = canvas(size, size, seed=10 * idx + k)
            draw_dot(img, uv[12])
            write_rgb(root / "training" / "rgb" / f"{idx + n * k:08d}.jpg", img)
        truth["samples"][idx] = {"K": K, "xyz": xyz, "uv": uv, "theta": theta, "mask": mask > 240}
    (root / "training_K.json").write_text(json.dumps(Ks))
    (root / "training_xyz.json").write_text(json.dumps(xyzs))
    (root / "training_mano.json").write_text(json.dumps(manos))
    (root / "training_scale.json").write_text(json.dumps(scales))
    eK, exyz = [], []
    for idx in range(n_eval):
        K = np.array([[size * 2.0, 0, size / 2], [0, size * 2.0, size / 2], [0, 0, 1.0]])
        uv = hand_uv_layout((size * 0.5, size * 0.5), size * 0.2)
        eK.append(K.tolist())
        exyz.append(backproject(K, uv, np.full(21, 0.5)).tolist())
        write_rgb(root / "evaluation" / "rgb" / f"{idx:08d}.jpg", canvas(size, size, seed=900 + idx))
    (root / "evaluation_K.json").write_text(json.dumps(eK))
    (root / "evaluation_scale.json").write_text(json.dumps([0.03] * n_eval))
    if eval_labels:
        (root / "evaluation_xyz.json").write_text(json.dumps(exyz))
    return truth


# --------------------------------------------------------------------------------------------- HO-3D
GL = np.diag([1.0, -1.0, -1.0])


def write_ho3d(root: Path, version: str = "v2", size: tuple[int, int] = (64, 48), seqs: tuple[str, ...] = ("ABF10", "MC1"),
               frames: int = 2) -> dict[str, Any]:
    """train.txt/evaluation.txt, latin1 meta pickles (protocol 2) in OpenGL coordinates, MANO+tips order,
    an ``objRot is None`` frame (MC1/0001), an evaluation split with root-only joints + bounding box,
    depth PNGs (R + 256 G) and ``segr`` masks (hand = blue, object = green)."""
    from hoi_adapt.data.datasets import ho3d as H

    w, h = size
    ext = ".png" if version == "v2" else ".jpg"
    mano_from_op = joint_maps.from_openpose_index("mano")
    truth: dict[str, Any] = {"train": {}, "evaluation": {}, "skipped": [("MC1", "0001")], "size": size}
    train_lines, eval_lines = [], []
    for s_i, seq in enumerate(seqs):
        for f in range(frames):
            fid = f"{f:04d}"
            K = np.array([[60.0 + s_i, 0, w / 2 + 1.5], [0, 61.0, h / 2 - 0.5], [0, 0, 1.0]])
            uv = hand_uv_layout((w * 0.5, h * 0.5), min(w, h) * 0.3)
            uv[8] = np.round(uv[8])
            xyz_cv = backproject(K, uv, 0.55 + 0.003 * np.arange(21))
            xyz_gl_mano = (xyz_cv @ GL.T)[mano_from_op]
            rng = np.random.default_rng(s_i * 10 + f)
            pose = rng.normal(0, 0.4, 48)
            trans = rng.normal(0, 0.05, 3)
            obj_rot = None if (seq == "MC1" and fid == "0001") else rng.normal(0, 1, (3, 1))
            meta = {"camMat": K, "handJoints3D": xyz_gl_mano, "handPose": pose, "handBeta": rng.normal(0, 1, 10),
                    "handTrans": trans, "objRot": obj_rot, "objTrans": np.array([0.0, 0.0, -0.5]),
                    "objName": "006_mustard_bottle",
                    "objCorners3DRest": np.zeros((8, 3))}
            d = root / "train" / seq
            write_pickle(d / "meta" / f"{fid}.pkl", meta)
            img = canvas(h, w, seed=s_i * 10 + f)
            draw_dot(img, uv[8])
            write_rgb(d / "rgb" / f"{fid}{ext}", img)
            depth_m = np.linspace(0.3, 1.2, h * w).reshape(h, w)
            code = np.round(depth_m / H.DEPTH_SCALE_M).astype(np.int64)
            bgr = np.zeros((h, w, 3), np.uint8)
            bgr[:, :, 2] = code % 256  # R (OpenCV index 2)
            bgr[:, :, 1] = code // 256  # G
            write_raw(d / "depth" / f"{fid}.png", bgr)
            seg = np.zeros((h // 2, w // 2, 3), np.uint8)  # stored at half resolution, BGR
            seg[: h // 4, :, 0] = 255  # blue = hand (top half)
            seg[h // 4:, : w // 4, 1] = 255  # green = object (bottom-left)
            write_raw(d / "segr" / f"{fid}.png", seg)
            train_lines.append(f"{seq}/{fid}")
            truth["train"][(seq, fid)] = {"K": K, "xyz": xyz_cv, "uv": uv, "meta": meta, "depth": code * H.DEPTH_SCALE_M,
                                          "hand_top_rows": h // 2}
    for f in range(frames):
        seq, fid = "SM1", f"{f:04d}"
        K = np.array([[62.0, 0, w / 2], [0, 62.0, h / 2], [0, 0, 1.0]])
        uv_root = np.array([[w * 0.4, h * 0.6]])
        root_cv = backproject(K, uv_root, np.array([0.5]))[0]
        bbox = np.array([w * 0.3, h * 0.25, w * 0.6, h * 0.7])
        meta = {"camMat": K, "handJoints3D": root_cv @ GL.T, "handBoundingBox": bbox, "objRot": np.zeros((3, 1)),
                "objTrans": np.zeros(3), "objName": "019_pitcher_base"}
        d = root / "evaluation" / seq
        write_pickle(d / "meta" / f"{fid}.pkl", meta)
        img = canvas(h, w, seed=300 + f)
        draw_dot(img, uv_root[0])
        write_rgb(d / "rgb" / f"{fid}{ext}", img)
        eval_lines.append(f"{seq}/{fid}")
        truth["evaluation"][(seq, fid)] = {"K": K, "root": root_cv, "bbox": bbox, "uv_root": uv_root[0]}
    (root / "train.txt").write_text("\n".join(train_lines) + "\n")
    (root / "evaluation.txt").write_text("\n".join(eval_lines) + "\n")
    return truth


# -------------------------------------------------------------------------------------------- ObMan
def write_obman(root: Path, split: str = "train", n: int = 2, size: int = 256) -> dict[str, Any]:
    """rgb/ + rgb_hand/ JPEG pairs, segm PNG (BGR channels: all / hand-only / object-only; labels 21-24,
    100), meta pickles with OpenGL-like coords_3d; sample 1 is a left hand."""
    from hoi_adapt.data.datasets import obman as O

    K = O.K_OBMAN
    truth: dict[str, Any] = {"samples": {}}
    for i in range(n):
        side = "left" if i % 2 == 1 else "right"
        uv = hand_uv_layout((size * (0.45 + 0.05 * i), size * 0.5), size * 0.15)
        uv[8] = np.round(uv[8])
        xyz_cv = backproject(K, uv, 0.45 + 0.002 * np.arange(21))
        label = {"right": 22, "left": 21}[side]
        full = np.zeros((size, size), np.uint8)
        lo, hi = np.floor(uv.min(0)).astype(int) - 3, np.ceil(uv.max(0)).astype(int) + 3
        full[lo[1]:hi[1], lo[0]:hi[0]] = label
        full[lo[1]:lo[1] + 4, lo[0]:hi[0]] = label + 2  # a second hand label (23/24)
        obj = np.zeros((size, size), bool)
        obj[(lo[1] + hi[1]) // 2: hi[1] + 10, lo[0] - 10:(lo[0] + hi[0]) // 2] = True
        all_lab = np.where(obj, 100, full).astype(np.uint8)
        segm = np.stack([all_lab, full, np.where(obj, 100, 0).astype(np.uint8)], axis=2)  # BGR order
        sid = f"{i:08d}"
        d = root / split
        write_raw(d / "segm" / f"{sid}.png", segm)
        img = canvas(size, size, seed=i)
        img[obj] = (30, 160, 30)
        draw_dot(img, uv[8], radius=3)
        write_rgb(d / "rgb" / f"{sid}.jpg", img)
        img_h = canvas(size, size, seed=50 + i)
        draw_dot(img_h, uv[8], radius=3)
        write_rgb(d / "rgb_hand" / f"{sid}.jpg", img_h)
        meta = {"coords_2d": uv, "coords_3d": xyz_cv @ GL.T, "verts_3d": np.zeros((778, 3)), "side": side,
                "hand_pose": np.zeros(45), "pca_pose": np.zeros(30), "depth_min": 0.3, "depth_max": 0.6,
                "hand_depth_min": 0.3, "hand_depth_max": 0.5, "obj_depth_min": 0.3, "obj_depth_max": 0.6,
                "class_id": "02876657", "sample_id": "abc", "affine_transform": np.eye(4), "obj_scale": 0.1}
        write_pickle(d / "meta" / f"{sid}.pkl", meta)
        hand_full = full > 0
        visible = hand_full & ~obj
        truth["samples"][i] = {"side": side, "uv": uv, "xyz": xyz_cv, "full": hand_full, "visible": visible, "object": obj,
                               "occlusion": 1.0 - visible.sum() / hand_full.sum()}
    return truth


# ------------------------------------------------------------------------------------- test helpers
def dot_centroid(image: Any) -> np.ndarray:
    """(u, v) centroid of the red dot in a (3,H,W) [0,1] tensor or (H,W,3) uint8 array."""
    img = image.permute(1, 2, 0).numpy() if hasattr(image, "permute") else np.asarray(image, float) / 255.0
    red = (img[..., 0] > 0.55) & (img[..., 1] < 0.4) & (img[..., 2] < 0.4)
    assert red.any(), "no red dot found"
    ys, xs = np.nonzero(red)
    return np.array([xs.mean(), ys.mean()])


def assert_projection_consistent(sample: dict[str, Any], atol: float = 1e-3) -> int:
    """Valid 3D joints projected with the returned K land on the returned valid 2D joints; returns the count."""
    both = (sample["joints3d_valid"] * sample["joints2d_valid"]).numpy().astype(bool)
    if both.any():
        uv = project(sample["K"].numpy(), sample["joints3d"].numpy()[both])
        np.testing.assert_allclose(uv, sample["joints2d"].numpy()[both], atol=atol)
    return int(both.sum())


def assert_invalid_zeroed(sample: dict[str, Any]) -> None:
    v3 = sample["joints3d_valid"].numpy().astype(bool)
    v2 = sample["joints2d_valid"].numpy().astype(bool)
    assert (sample["joints3d"].numpy()[~v3] == 0).all()
    assert (sample["joints2d"].numpy()[~v2] == 0).all()
