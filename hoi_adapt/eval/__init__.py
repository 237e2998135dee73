"""Evaluation: metrics (PCK/AUC, MPJPE, F-score), protocol alignments, the standard protocols and reports.

Coordinates go in as metres, errors and thresholds come out in millimetres. Typical use::

    from hoi_adapt.eval import evaluate_protocol, write_results, comparison_rows
    res = evaluate_protocol("dexter_object", pred_joints, gt_joints, gt_valid, sequences=seqs)
    write_results({"ours": res}, out_dir, "dexter_object", comparison=comparison_rows("dexter_object"))
"""
from hoi_adapt.eval.alignment import (
    align_hand3d_palm,
    align_ho3d_sc_tr,
    align_joint9_bone_scale,
    bone_scale_align,
    fingertip_align,
    palm_from_openpose,
    procrustes_align,
    root_align,
    root_relative,
    wrist_from_palm,
)
from hoi_adapt.eval.metrics import (
    THRESHOLD_GRIDS,
    ThresholdGrid,
    auc,
    fscore,
    get_grid,
    joint_errors_mm,
    keypoint_stats,
    median_error,
    mpjpe,
    pck_curve,
)
from hoi_adapt.eval.protocols import PROTOCOLS, Protocol, evaluate_protocol, get_protocol
from hoi_adapt.eval.published import PublishedRow, comparison_rows
from hoi_adapt.eval.report import write_results

__all__ = [
    "PROTOCOLS", "THRESHOLD_GRIDS", "Protocol", "PublishedRow", "ThresholdGrid",
    "align_hand3d_palm", "align_ho3d_sc_tr", "align_joint9_bone_scale", "auc", "bone_scale_align",
    "comparison_rows", "evaluate_protocol", "fingertip_align", "fscore", "get_grid", "get_protocol",
    "joint_errors_mm", "keypoint_stats", "median_error", "mpjpe", "palm_from_openpose", "pck_curve",
    "procrustes_align", "root_align", "root_relative", "wrist_from_palm", "write_results",
]
