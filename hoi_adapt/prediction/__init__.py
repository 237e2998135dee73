"""``hoi-adapt predict``: 3D joints, MANO mesh and overlays for every hand in your own images.

Images of any size and aspect ratio go through the same crop geometry as training (``data/crop.py``,
exact OpenCV pixel-centre affines):

1. **Camera.** ``K`` from ``--K fx,fy,cx,cy`` / ``--K-file`` (one K or per-file entries). Without one the
   camera is unknown and the convention of COLMAP's image reader is used (``default_focal_length_factor``
   = 1.2: ``fx = fy = 1.2 * max(H, W)``, about a 45 degree field of view on the long side, a typical phone or
   webcam lens; principal point at the image centre ``((W-1)/2, (H-1)/2)``). A warning says that metric
   scale and depth are then approximate; the 2D joints and the root-relative 3D pose are (largely) not
   affected, because the network sees the same pixels whatever K is.
2. **Hands.** Each hand needs a box and a side. With boxes (``--box``, ``--boxes``) no detector runs: each
   box ``[x0, y0, x1, y1]`` is a hand, its side the box's own ``"side"`` (boxes file), else left with
   ``--left``, else right. Otherwise a detector looks at the whole image (``detection.py``; ``--detector``):
   MediaPipe Hands (``peers/mediapipe.py``, its own venv built by ``make peers``; ``auto`` uses it when that
   venv exists) reports up to ``--max-hands`` hands, each with the tight box of its 21 landmarks, an
   anatomical side (``--left`` overrides it) and its handedness confidence as score. Hands are numbered
   left to right. Zero hands is a valid result (noted). Without a detector (``none``, or ``auto`` when
   MediaPipe is not installed, said in one warning) each image gets one hand from a two-pass crop: the
   estimator runs on the whole image letterboxed to a square, the largest connected region of its hand-mask
   evidence (``mask_prob > 0.5``) is the box (the whole image when empty), side from ``--left``.
3. **Crop.** The square of side ``CROP_SCALE`` (1.3) times the box's longer side around its centre -- the
   middle of the synthetic world's crop margins (1.15-1.4 times the hand's extent); landmark boxes are
   first widened by 1.1 (``LANDMARK_BOX_SCALE`` = 1.43: joints lie inside the hand's outline). The crop is
   resized to the network input size (recorded in the checkpoint, else ``--input-size``, default 128) and
   its intrinsics are ``K_crop = A @ K``. All hands of a batch of images go through the network together.
4. **Back to the image.** ``K_crop`` describes the *same* camera frame as ``K`` (the crop only re-maps
   pixels), so 3D joints and mesh need no change: they are camera-frame metres of the original camera. The
   2D joints are ``project(joints3d, K)`` in original pixels, which equals the crop's 2D joints mapped by
   ``A^-1``.
5. **Left hands**: the image is mirrored (``u -> W-1-u``, ``K -> flip_intrinsics``), a right hand is
   predicted and the results are mirrored back: 3D ``x -> -x``, 2D ``u -> W-1-u``, faces re-wound
   outward, MANO pose ``(x, y, z) -> (x, -y, -z)`` per joint and translation ``x -> -x`` -- i.e. MANO
   parameters of the *left* hand model (exact for mirror-symmetric left/right models, see ``crop.flip_*``).

Files written per image into ``--out`` (all atomically): ``<stem>.json`` (schema below, written last),
``<stem>_overlay.png`` (every hand's shaded mesh and skeleton on the original image), per hand ``k``
``<stem>_hand<k>.obj`` (mesh, camera frame, metres, outward faces) and with ``--adapt``
``<stem>_hand<k>_hand_only.png`` (the generator's hand-only translation of the crop, mirrored back for left
hands); and ``predictions.json``, the index of the folder: per image its files with their sha256, the input's
size, mtime and sha256 and the settings it was predicted with (K, boxes, ``--left``, detector, hand model);
and ``failures`` (name, path, reason). No data is lost: an input image is never overwritten, and an existing
file only when an earlier ``hoi-adapt predict`` run wrote it and it is unchanged since, so ``--out`` may be
the input folder; files listed in the index are not taken as input images on a rerun. A folder holding
predictions of another checkpoint (or ``--adapt``, ``--input-size``) is refused, naming the folder and what
differs, unless ``--overwrite`` (which deletes the earlier run's unchanged files first); more images with the
same checkpoint and settings are added to it. **Resuming**: an image the index records as finished, with the
same settings and an unchanged input (same size and mtime, or same sha256) and intact outputs, is skipped;
``--overwrite`` recomputes it. Files of an earlier prediction of an image that a new one does not write again
(fewer hands, schema 1 names) are deleted when unchanged. Images sharing a stem (``a.jpg``, ``a.png``) get
distinct output stems.
**Bad files**: an unreadable, truncated or non-image file (or one the detector cannot read) is reported in one
line and skipped, listed under ``failures``; the command ends with a one-line summary (done, hands, skipped as
finished, failed) and exits 1 when anything failed; ``--fail-fast`` (the API's default, ``fail_fast=True``)
stops at the first one. Results of finished images stay indexed after an error or an interrupt.

``--K-file``: ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``, ``[fx, fy, cx, cy]`` or ``{"fx":, "fy":, "cx":, "cy":}``
for every image, or an object mapping file names (or paths, stems; ``"*"``: any other image) to one of
these. ``--boxes``: an object mapping file names to a box ``[x0, y0, x1, y1]`` (pixels), a box with a side
``{"box": [x0, y0, x1, y1], "side": "left"}``, a list of these (several hands), or ``null`` (detect).
A box must overlap the image (parts outside are padded black). Values starting with ``-`` need the
``--K=...`` / ``--box=...`` spelling.

``<stem>.json`` (``schema_version`` 2; 1 had one hand's fields at the top level)::

    schema, schema_version, image {path, name, width, height, sha256},
    camera {K (3x3), assumed (bool), source},
    detector {name ("mediapipe"|"boxes"|"two-pass"|...), version, settings, box_scale},
    checkpoint {path, sha256, kind}, adapt (bool),
    joint_order ("openpose"), joint_names (21), skeleton ("mesh"|"kinematic": the definition of joints3d, see
    ``hand.model.SKELETONS``), hand_model {type ("stand-in"|"MANO"), file, tip_preset},
    notes [str] (e.g. no hand found), files {json, overlay},
    hands [  # one per hand, left to right for detections, in the given order for boxes
      {side ("right"|"left"), side_source ("box"|"left"|"detector"|"default"), score (detector's, else null),
       box [x0, y0, x1, y1] (original pixels; the mask region for the two-pass crop; null: whole image),
       crop {source ("box"|"detector"|"auto"|"full_image"), center [cx, cy], side, xyxy, input_size, scale,
             mirrored, affine (3x3: original pixel -> network-input pixel, mirroring included)},
       joints3d (21x3, metres, OpenCV camera frame), joints2d (21x2, original pixels, pixel centre of column i
       at u=i), mano {side, global_orient (3), hand_pose (45, absolute axis-angle, flat_hand_mean=True),
       betas (10), transl (3, metres), flat_hand_mean}, mesh {num_vertices, num_faces, units, frame},
       first_pass {joints3d, joints2d} (with adapt), files {obj, hand_only (with adapt)}}]
"""
from __future__ import annotations

from hoi_adapt.prediction.core import RunReport, iter_predictions, predict

__all__ = ["RunReport", "iter_predictions", "predict"]
