"""Fitting metric.py's constants to butteraugli, and judging a fit on photos left out of it.

Input: per calibration photo, the rows of bench_quality.calibration_rows (per encoding the
metric's features, the original's descriptors, width, format, quality and butteraugli's
3-norm). A design is fitted by non-negative least squares (the error features' weights must
be >= 0 so more error never raises the distance; offsets and descriptor weights may take
either sign), each photo predicted by a fit that never saw it. Besides the rms error, the
report simulates the search: per photo, width and format it interpolates the quality where
the predicted distance meets the goal and reads butteraugli there, so a design is judged by
what the presets would land on (mean, spread max - min) rather than by a fit over all
qualities, most of which no preset uses.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

from imgpipe.engine import metric

FORMATS = ("avif", "webp", "jpeg")
GOAL = 1.2  # medium's butteraugli
NEAR = 0.6  # rows weigh exp(-((butteraugli - GOAL) / NEAR)^2 / 2): fit where presets land


# Which of metric.bias_terms a design uses: the luma texture at both scales, all texture,
# texture and contrast, everything (means too).
TERMS = {
    "luma": [1, 4],
    "chroma": [0, 2, 3, 5],
    "texture": list(range(6)),
    "contrast": list(range(12)),
    "all": list(range(15)),
}


def design(rows: dict, describe: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Columns that must be >= 0 (the features) and columns of either sign (intercept,
    format offsets, descriptors)."""
    n = len(rows["ba"])
    free = [np.ones(n)] + [(rows["format"] == f).astype(float) for f in ("jpeg", "webp")]
    if describe:
        terms = np.array([metric.bias_terms(d) for d in rows["desc"]])
        base, _, extra = describe.partition("+")
        free += list(terms[:, TERMS[base]].T)
        if extra:  # JPEG's own: its 4:2:0 chroma and blocks fare differently per photo
            jpeg = (rows["format"] == "jpeg")[:, None]
            free += list((terms[:, TERMS[extra]] * jpeg).T)
    return rows["features"], np.array(free).T


def fit(rows: dict, describe: str | None, near: float | None = NEAR) -> dict:
    positive, free = design(rows, describe)
    # Free columns are centred (their mean goes to the intercept) so the fit is well scaled.
    centre = free[:, 1:].mean(axis=0)
    free = np.hstack([free[:, :1], free[:, 1:] - centre])
    weight = np.ones(len(rows["ba"]))
    if near:
        weight = np.exp(-0.5 * ((rows["ba"] - GOAL) / near) ** 2) + 0.05
    a = np.hstack([positive, free, -free]) * np.sqrt(weight)[:, None]
    solution, _ = nnls(a, rows["ba"] * np.sqrt(weight), maxiter=50 * a.shape[1])
    k = positive.shape[1]
    signed = solution[k : k + free.shape[1]] - solution[k + free.shape[1] :]
    signed[0] -= signed[1:] @ centre  # back to uncentred columns
    return {"weights": solution[:k], "free": signed, "describe": describe}


def predict(model: dict, rows: dict) -> np.ndarray:
    positive, free = design(rows, model["describe"])
    return positive @ model["weights"] + free @ model["free"]


def cross_predict(
    data: list[tuple[str, dict]], describe: str | None, near: float | None, per_format: bool = False
) -> list:
    """Each photo's rows predicted by a fit on the other photos (one fit per format with
    `per_format`)."""
    out = []
    for i, (name, rows) in enumerate(data):
        others = merge([r for j, (_, r) in enumerate(data) if j != i])
        if not per_format:
            out.append((name, rows, predict(fit(others, describe, near), rows)))
            continue
        predicted = np.zeros(len(rows["ba"]))
        for fmt in FORMATS:
            mine, theirs = rows["format"] == fmt, others["format"] == fmt
            model = fit(select(others, theirs), describe, near)
            predicted[mine] = predict(model, select(rows, mine))
        out.append((name, rows, predicted))
    return out


def select(rows: dict, pick: np.ndarray) -> dict:
    return {k: v[pick] for k, v in rows.items()}


def merge(parts: list[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def landed(rows: dict, predicted: np.ndarray, shifts: dict | None = None) -> list:
    """(format, width, butteraugli) where the search would land: the quality at which the
    predicted distance falls to GOAL (less a target correction from `shifts`, see
    `corrections`), interpolated between the encoded qualities."""
    out = []
    for fmt in FORMATS:
        for width in np.unique(rows["width"]):
            pick = (rows["format"] == fmt) & (rows["width"] == width)
            order = np.argsort(rows["q"][pick])
            q = rows["q"][pick][order].astype(float)
            guess = np.minimum.accumulate(predicted[pick][order])  # monotone, as a search sees
            real = rows["ba"][pick][order]
            shift, slope = (shifts or {}).get(fmt, (0.0, 0.0))
            goal = GOAL - (shift + slope * np.log2(width / 480)) / 10
            if guess[-1] > goal or guess[0] < goal:
                continue  # out of the encoded range: no landing to read
            at = np.interp(-goal, -guess, q)
            out.append((fmt, int(width), float(np.interp(at, q, real))))
    return out


def summary(results: list) -> dict:
    """Per format: mean, spread and standard deviation of the landings once corrected per
    format and width as encode.target_of would be; errors overall and near the goal."""
    shifts = corrections(results)
    lands = [(name, *land) for name, rows, pred in results for land in landed(rows, pred, shifts)]
    errors = np.concatenate([pred - rows["ba"] for _, rows, pred in results])
    near = [(pred - rows["ba"])[np.abs(rows["ba"] - GOAL) < 0.5] for _, rows, pred in results]
    bias = [e.mean() for e in near if len(e)]
    out = {
        "rms": float(np.sqrt(np.mean(errors**2))),
        "rms_near": float(np.sqrt(np.mean(np.concatenate(near) ** 2))),
        "bias": float(np.sqrt(np.mean(np.square(bias)))),
    }
    for fmt in FORMATS:
        values = np.array([b for _, f, _, b in lands if f == fmt] or [np.nan])
        out[fmt] = (float(values.mean()), float(np.ptp(values)), float(values.std()))
    return out


def corrections(results: list) -> dict[str, tuple[float, float]]:
    """Per format (shift, slope) in score points of a target correction that moves the
    simulated landings to GOAL at every width: 10 x (butteraugli - GOAL) against
    log2(width / 480), as encode.target_of applies it."""
    out = {}
    for fmt in FORMATS:
        pairs = [
            (np.log2(w / 480), 10 * (b - GOAL))
            for _, rows, pred in results
            for f, w, b in landed(rows, pred)
            if f == fmt
        ]
        if len({x for x, _ in pairs}) < 2:
            out[fmt] = (0.0, 0.0)
            continue
        x, y = np.array(pairs).T
        slope, shift = np.polyfit(x, y, 1)
        out[fmt] = (float(shift), float(slope))
    return out


def line(name: str, s: dict) -> str:
    return (
        f"{name:<28} rms {s['rms']:.3f} near {s['rms_near']:.3f} bias {s['bias']:.3f}  "
        + "  ".join(f"{f} {m:.2f}/{sp:.2f}/{sd:.2f}" for f in FORMATS for m, sp, sd in [s[f]])
    )


def report(data: list[tuple[str, dict]]) -> None:
    """Designs compared on photos left out of the fit; then the chosen fit on all photos."""
    print(
        f"\n{len(data)} photos, {sum(len(r['ba']) for _, r in data)} encodings; left out of "
        "the fit: rms, near the goal, per-photo bias; landings per format mean/spread/std"
    )
    for label, describe, near, per_format in (
        ("all rows", None, None, False),
        ("near the goal", None, NEAR, False),
        *((f"near + {t}", t, NEAR, False) for t in TERMS),
        *((f"all rows + {t}", t, None, False) for t in ("luma", "texture")),
        *(
            (f"all rows + {t}", t, None, False)
            for t in ("luma+texture", "luma+luma", "luma+chroma")
        ),
        ("per format", None, NEAR, True),
        ("per format + luma", "luma", NEAR, True),
    ):
        print(line(label, summary(cross_predict(data, describe, near, per_format))))


CHOSEN = ("luma", None)  # the design metric.py uses: bias terms, row weighting (None: even)


def constants(data: list[tuple[str, dict]]) -> None:
    """The chosen design fitted on every photo, as metric.py's constants; and encode.py's
    target corrections moved by what the new fit changes in the simulated landings (the
    corrections in force were measured with real searches, which the simulation only
    approximates: it moves them by the difference, not to its own answer)."""
    from imgpipe.engine.encode import TARGET_SHIFT, TARGET_SLOPE

    every = merge([r for _, r in data])
    describe, near = CHOSEN
    model = fit(every, describe, near)
    bias = np.zeros(15)
    bias[TERMS[describe]] = model["free"][3:]
    intercept, jpeg, webp = model["free"][:3]
    old = [(n, r, r["features"] @ metric.WEIGHTS + offsets(r)) for n, r in data]
    new = [(n, r, predict(model, r)) for n, r in data]
    print(line("in force (fitted)", summary(old)))
    print(line("chosen (fitted)", summary(new)))
    was, now = corrections(old), corrections(new)
    shift = {f: round(TARGET_SHIFT[f] + now[f][0] - was[f][0], 2) for f in FORMATS}
    slope = {f: round(TARGET_SLOPE[f] + now[f][1] - was[f][1], 2) for f in FORMATS}
    print("WEIGHTS =", np.array2string(model["weights"], precision=6, separator=", "))
    print(f'FORMAT_OFFSETS = {{"jpeg": {jpeg:.4g}, "webp": {webp:.4g}}}')
    print(f"INTERCEPT = {intercept:.4g}")
    print("BIAS_WEIGHTS =", np.array2string(bias, precision=6, separator=", "))
    print(f"TARGET_SHIFT: dict[str, float] = {shift}")
    print(f"TARGET_SLOPE: dict[str, float] = {slope}")


def offsets(rows: dict) -> np.ndarray:
    """metric.py's format offsets, intercept and bias in force, per row."""
    by_format = np.array([metric.FORMAT_OFFSETS.get(f, 0.0) for f in rows["format"]])
    bias = np.array([metric.bias_terms(d) @ metric.BIAS_WEIGHTS for d in rows["desc"]])
    return by_format + metric.INTERCEPT + bias
