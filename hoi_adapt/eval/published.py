"""Published numbers to print beside ours — only values read in a public source, each with its citation.

Every row records the threshold grid its numbers were computed on, because AUCs over 20–50 mm differ with
the number of thresholds (datasets.md §5). Nothing here is estimated or read off a figure. The CVPR 2020
paper this project reproduces (Baek, Kim & Kim) was not found in a machine-readable form, so its own table
is NOT included; add it only from the paper itself.

Sources actually read:

* ``CalciferZh/minimal-hand: plot.py`` — the authors' 3D PCK curves of Zhou et al. (CVPR 2020, DetNet+IKNet)
  on RHD, STB, D+O and ED at ``linspace(20, 50, 16)`` mm. Their normalised trapezoid AUCs (computed here)
  are 0.856 / 0.898 / 0.948 / 0.811, the paper values quoted in the Minimal-Hand-pytorch README.
* ``MengHao666/Minimal-Hand-pytorch: README.md`` — "3D PCK AUC Difference" table: DetNet (paper) and a
  PyTorch re-implementation (``get_measures(20, 50, 15)``).
* ``lmb-freiburg/hand3d: utils/general.py`` (``get_stb_ref_curves``) — PSO, ICPPSO and CHPR curves on STB
  at 20, 25, ..., 50 mm, "reported by Zhang et al. 2016"; ``eval_full.py`` docstring — hand3d's own STB
  result (AUC 0–50 mm with 20 thresholds, mean/median EPE; STB Bumblebee stereo images, palm-rooted).
* ``lmb-freiburg/freihand: README.md`` — the all-zeros predictor's scores (a sanity baseline for our
  Procrustes and F-score implementation; errors quoted in cm there, converted to mm here).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hoi_adapt.eval.metrics import auc
from hoi_adapt.eval.protocols import get_protocol


@dataclass(frozen=True)
class PublishedRow:
    """One published result: metric values (and optionally a PCK curve) with the grid and the citation."""

    method: str
    dataset: str
    metrics: dict[str, float]
    grid: str
    citation: str
    thresholds_mm: tuple[float, ...] | None = None
    pck: tuple[float, ...] | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["thresholds_mm"] = None if self.thresholds_mm is None else list(self.thresholds_mm)
        d["pck"] = None if self.pck is None else list(self.pck)
        return d


def _curve_row(method: str, dataset: str, thr: np.ndarray, pck: list[float], grid: str, citation: str,
               note: str = "") -> PublishedRow:
    t = tuple(float(x) for x in thr)
    p = tuple(float(x) for x in pck)
    return PublishedRow(method, dataset, {"auc": auc(p, t)}, grid, citation, t, p, note)


# Zhou et al. 2020 (minimal-hand, DetNet+IKNet): 3D PCK on linspace(20, 50, 16) mm.
_MINIMAL_HAND_CITATION = "Zhou et al., CVPR 2020; curves from CalciferZh/minimal-hand: plot.py"
_MINIMAL_HAND_GRID = "20-50mm (linspace(20, 50, 16))"
_MINIMAL_HAND_PCK: dict[str, list[float]] = {
    "rhd": [0.6564078157637292, 0.7067105576267153, 0.7490415377700219, 0.783810581423019, 0.813027154226488,
            0.836995320060284, 0.8577245445651887, 0.8741836545834325, 0.8881441527193887, 0.8998175616720869,
            0.9100896327437138, 0.9187752835726184, 0.9261389175325877, 0.9324317178287195, 0.9379180878348008,
            0.9425451468760742],
    "stb": [0.7323492063492063, 0.7761904761904762, 0.8114920634920635, 0.841015873015873, 0.8640952380952381,
            0.8826825396825397, 0.8992380952380953, 0.9118888888888889, 0.9234761904761905, 0.9322698412698412,
            0.9411428571428572, 0.9485873015873015, 0.9547936507936507, 0.9609047619047619, 0.9655238095238096,
            0.9693015873015873],
    "dexter_object": [0.8161910144108505, 0.8587877931619101, 0.8924837524724498, 0.9169256852218141,
                      0.9356456626165583, 0.9489968917773383, 0.9583922011867759, 0.9655269850240181,
                      0.9708957332579825, 0.9742158801921447, 0.977606668550438, 0.9791607798813224,
                      0.9812800226052557, 0.9829047753602712, 0.9837524724498445, 0.9843176038428935],
    "egodexter": [0.6108895439569967, 0.6606554534419976, 0.7024449453788798, 0.7398994277787411,
                  0.7724986994971389, 0.7964279521414948, 0.8172359979191954, 0.8319750303450668,
                  0.8449800589561297, 0.8545170799375759, 0.864054100919022, 0.873764522281949,
                  0.8801803363967401, 0.8838217444078377, 0.8883301543263395, 0.8923183631003988],
}

# Minimal-Hand-pytorch README, "3D PCK AUC Diffenence" table (AUC, 20-50 mm).
_MHP_CITATION = "MengHao666/Minimal-Hand-pytorch: README.md (3D PCK AUC table)"
_MHP_TABLE: dict[str, dict[str, float]] = {
    # dataset: {column: value}; '-' cells omitted
    "rhd": {"DetNet (re-impl.)": 0.9339, "DetNet+LM+AIK (re-impl.)": 0.9301},
    "stb": {"DetNet (Zhou et al. 2020, paper)": 0.891, "DetNet (re-impl.)": 0.8744, "DetNet+LM+AIK (re-impl.)": 0.8647},
    "dexter_object": {"DetNet (Zhou et al. 2020, paper)": 0.923, "DetNet (re-impl.)": 0.9378,
                      "DetNet+LM+AIK (re-impl.)": 0.9392},
    "egodexter": {"DetNet (Zhou et al. 2020, paper)": 0.804, "DetNet (re-impl.)": 0.9270,
                  "DetNet+LM+AIK (re-impl.)": 0.9288},
}

# Zhang et al. 2016 baselines on STB (B1 sequences), as tabulated in hand3d utils/general.py.
_STB_REF_THR = [20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0]
_STB_REF: dict[str, list[float]] = {
    "PSO": [0.32236842, 0.53947368, 0.67434211, 0.75657895, 0.80921053, 0.86513158, 0.89473684],
    "ICPPSO": [0.51973684, 0.64473684, 0.71710526, 0.77302632, 0.80921053, 0.84868421, 0.86842105],
    "CHPR": [0.56578947, 0.71710526, 0.82236842, 0.88157895, 0.91447368, 0.9375, 0.96052632],
}


def _rows() -> list[PublishedRow]:
    rows: list[PublishedRow] = []
    thr16 = np.linspace(20.0, 50.0, 16)
    for ds, pck in _MINIMAL_HAND_PCK.items():
        rows.append(_curve_row("Zhou et al. 2020 (DetNet+IKNet)", ds, thr16, pck, _MINIMAL_HAND_GRID,
                               _MINIMAL_HAND_CITATION,
                               "authors' curve; D+O/ED use fingertip centroid+scale alignment"))
    for ds, cols in _MHP_TABLE.items():
        for method, value in cols.items():
            reimpl = "re-impl." in method
            grid = "20-50mm-15 (linspace(20, 50, 15))" if reimpl else "20-50 mm (grid as in the paper)"
            note = "Minimal-Hand-pytorch re-implementation (README: D+O/ED labels cleaned)" if reimpl else ""
            rows.append(PublishedRow(method, ds, {"auc": value}, grid, _MHP_CITATION, note=note))
    thr7 = np.asarray(_STB_REF_THR)
    for method, pck in _STB_REF.items():
        rows.append(_curve_row(f"{method} (Zhang et al. 2016)", "stb", thr7, pck, "20-50mm step 5 (7 thresholds)",
                               "Zhang et al. 2016 via lmb-freiburg/hand3d: utils/general.py (get_stb_ref_curves)",
                               "STB B1 sequences"))
    rows.append(PublishedRow(
        "Zimmermann & Brox 2017 (hand3d)", "stb",
        {"auc": 0.764, "mean_epe_mm": 12.210, "median_epe_mm": 9.405}, "0-50mm-20 (linspace(0, 50, 20))",
        "lmb-freiburg/hand3d: eval_full.py (docstring)",
        note="STB Bumblebee stereo test images (6000), palm-rooted, prediction scaled by GT bone; "
             "EPE is hand3d's mean over keypoints of per-keypoint mean/median",
    ))
    rows.append(PublishedRow(
        "all-zeros predictor (FreiHAND pred.py)", "freihand",
        {"abs_mpjpe_mm": 707.9, "pa_mpjpe_mm": 48.7, "mesh_abs_mpvpe_mm": 708.4, "mesh_pa_mpvpe_mm": 51.2,
         "f5": 0.0, "f15": 0.0, "pa_f5": 0.001, "pa_f15": 0.029},
        "n/a (no PCK)", "lmb-freiburg/freihand: README.md (Evaluate on the dataset, step 4)",
        note="sanity baseline; README quotes cm (70.79, 4.87, 70.84, 5.12)",
    ))
    return rows


def comparison_rows(dataset: str) -> list[PublishedRow]:
    """Cited published rows for a protocol/dataset name (``dexter_object``, ``egodexter``, ``stb``, ``rhd``,
    ``freihand``); an empty list where nothing reliable was found (``ho3d``, ``synthetic``)."""
    try:
        key = get_protocol(dataset).name
    except ValueError:
        key = dataset.lower()
    return [r for r in _rows() if r.dataset == key]
