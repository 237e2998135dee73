"""``hoi-adapt predict``: 3D hand joints, MANO mesh and overlays for your own images.

Images of any size and aspect ratio go through the same crop geometry as training (``data/crop.py``,
exact OpenCV pixel-centre affines):

1. **Camera.** ``K`` from ``--K fx,fy,cx,cy`` / ``--K-file`` (one K or per-file entries). Without one the
   camera is unknown and the convention of COLMAP's image reader is used (``default_focal_length_factor``
   = 1.2: ``fx = fy = 1.2 * max(H, W)``, about a 45 degree field of view on the long side, a typical phone or
   webcam lens; principal point at the image centre ``((W-1)/2, (H-1)/2)``). A warning says that metric
   scale and depth are then approximate; the 2D joints and the root-relative 3D pose are (largely) not
   affected, because the network sees the same pixels whatever K is.
2. **Crop.** With a hand box ``[x0, y0, x1, y1]`` (``--box``, ``--boxes``) the crop is the square of side
   ``CROP_SCALE`` (1.3) times the box's longer side around its centre -- the middle of the synthetic
   world's crop margins (1.15-1.4 times the hand's extent). Without one the crop is found in two passes:
   the estimator runs on the whole image letterboxed to a square, the largest connected region of its
   hand-mask evidence (``mask_prob > 0.5``) gives a box (the whole image when empty), and the estimator
   runs again on that crop. The crop is resized to the network input size (recorded in the checkpoint, else
   ``--input-size``, default 128) and its intrinsics are ``K_crop = A @ K``.
3. **Back to the image.** ``K_crop`` describes the *same* camera frame as ``K`` (the crop only re-maps
   pixels), so 3D joints and mesh need no change: they are camera-frame metres of the original camera. The
   2D joints are ``project(joints3d, K)`` in original pixels, which equals the crop's 2D joints mapped by
   ``A^-1``.
4. **Left hands** (``--left``): the image is mirrored (``u -> W-1-u``, ``K -> flip_intrinsics``), a right
   hand is predicted and the results are mirrored back: 3D ``x -> -x``, 2D ``u -> W-1-u``, faces re-wound
   outward, MANO pose ``(x, y, z) -> (x, -y, -z)`` per joint and translation ``x -> -x`` -- i.e. MANO
   parameters of the *left* hand model (exact for mirror-symmetric left/right models, see ``crop.flip_*``).

Files written per image into ``--out`` (all atomically): ``<stem>.json`` (schema below), ``<stem>.obj``
(mesh, camera frame, metres, outward faces), ``<stem>_overlay.png`` (shaded mesh + skeleton on the original
image), with ``--adapt`` also ``<stem>_hand_only.png`` (the generator's hand-only translation of the crop, mirrored
back for left hands);
and ``predictions.json``, an index of the folder. No data is lost: an input image is never overwritten, and
an existing file only when an earlier ``hoi-adapt predict`` run wrote it and it is unchanged since (the
index records each file's sha256), so ``--out`` may be the input folder; files listed in the index are not
taken as input images on a rerun. A folder holding predictions of another checkpoint (or ``--adapt``,
``--input-size``) is refused, naming the folder and what differs, unless ``--overwrite`` (which deletes the
earlier run's unchanged files first); more images with the same checkpoint and settings are added to it.
Images sharing a stem (``a.jpg``, ``a.png``) get distinct output stems.
An unreadable image stops the run with an error naming it; results of finished batches stay indexed.

``--K-file``: ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``, ``[fx, fy, cx, cy]`` or ``{"fx":, "fy":, "cx":, "cy":}``
for every image, or an object mapping file names (or paths, stems; ``"*"``: any other image) to one of
these. ``--boxes``: an object mapping file names to ``[x0, y0, x1, y1]`` (pixels, ``null``: automatic).
A box must overlap the image (parts outside are padded black). Values starting with ``-`` need the
``--K=...`` / ``--box=...`` spelling.

``<stem>.json`` (``schema_version`` 1)::

    schema, schema_version, image {path, name, width, height}, side ("right"|"left"),
    camera {K (3x3), assumed (bool), source},
    crop {source ("box"|"auto"|"full_image"), center [cx, cy], side, xyxy, input_size, scale, mirrored,
          affine (3x3: original pixel -> network-input pixel, mirroring included)},
    joint_order ("openpose"), joint_names (21), joints3d (21x3, metres, OpenCV camera frame),
    joints2d (21x2, original pixels, pixel centre of column i at u=i),
    mano {side, global_orient (3), hand_pose (45, absolute axis-angle, flat_hand_mean=True), betas (10),
          transl (3, metres), flat_hand_mean},
    hand_model {type ("stand-in"|"MANO"), file, tip_preset}, mesh {num_vertices, num_faces, units, frame},
    checkpoint {path, sha256, kind}, adapt (bool), first_pass {joints3d, joints2d} (with adapt), files.
"""
from __future__ import annotations

from hoi_adapt.prediction.core import iter_predictions, predict

__all__ = ["iter_predictions", "predict"]
