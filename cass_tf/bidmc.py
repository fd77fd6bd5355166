"""Owns PPG rate scoring on BIDMC: breathing and pulse rate errors of separated PPG and of the band-passed PLETH under
every metrics.RATE_ESTIMATORS estimator, their summaries, and the push rule on them.

Protocol (issue 21's): the PLETH as recorded goes to each model (`separated`); 32-s windows every metrics.RATE_HOP_SECONDS (16 s); breathing rate against annotator 1's
breaths (BREATH_ANNOTATOR; the rate of the breaths inside the window), pulse rate against the median of the
monitor's once-a-second HR inside the window; breathing read from a model's respiratory output, pulse from its heart
output, each by every estimator in its band (metrics.BREATHING_BAND, PULSE_BAND; every estimator band-passes its
input to the band first, metrics.windowed_rates); the reference method is the raw PLETH band-passed to the same band
(BANDPASS), then given to the estimators like every other source, which filter it once more. Per record the MAE
over windows where both rates exist; summaries: mean and median of the record MAEs, and MAE and median over all
windows pooled.

Validation only: BIDMC chooses between trained models (the push rule); nothing here trains, fits or tunes.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import numpy as np

from cass_tf import metrics, realdata
from cass_tf.separator import Separator, separate

BANDPASS = "band-pass"
CANDIDATE = "candidate"  # the label of the model `check` decides on
BREATH_ANNOTATOR = 0  # annotator 1 (the table); BIDMC's two annotators differ in places
QUANTITIES = {"breathing": ("respiratory", metrics.BREATHING_BAND), "pulse": ("heart", metrics.PULSE_BAND)}
STATISTICS = ("record_mean", "record_median", "pooled_mae", "pooled_median")
RULE_STATISTIC = "record_mean"  # what the push rule compares: the mean over records of each record's MAE
AS_RECORDED, MEAN_REMOVED = "as recorded", "mean removed"  # the PLETH given to the models (`separated`)
OFFSETS = (AS_RECORDED, MEAN_REMOVED)


def references(record: realdata.PPGRecord) -> dict[str, np.ndarray]:
    """{"breathing": annotator 1's rate, "pulse": the monitor's median HR} per window (NaN where there is none)."""
    samples, rate, hop = record.pleth.size, record.rate, metrics.RATE_HOP_SECONDS
    return {"breathing": metrics.windowed_event_rates(record.breaths[BREATH_ANNOTATOR], samples, rate, hop=hop),
            "pulse": realdata.monitor_rates(record.heart_rate, samples, rate, hop=hop, statistic=np.median)}


def separated(separator: Any, record: realdata.PPGRecord, offset: str = AS_RECORDED) -> dict[str, np.ndarray]:
    """A model's components of the record's PLETH: with `offset` AS_RECORDED its DC offset included, what
    `cass_tf.separate` gets from a user and how issue 21's table was made; with MEAN_REMOVED the record's mean
    subtracted first (a device sets the DC offset, so a separator's rates should not depend on it; how much each
    model's do is in docs/results/real.md)."""
    if offset not in OFFSETS:
        raise ValueError(f"offset must be one of {OFFSETS}, got {offset!r}")
    pleth = record.pleth if offset == AS_RECORDED else record.pleth - np.mean(record.pleth)
    return {name: np.asarray(value, dtype=np.float64) for name, value in
            separate(pleth.astype(np.float32), separator, sample_rate=record.rate).items()}


def score_record(record: realdata.PPGRecord, outputs: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, Any]:
    """Rate errors of one record: {"record", "<quantity>/reference": rates, quantity: {source: {estimator:
    rate_errors + "rates"}}}, sources BANDPASS and each label of `outputs` ({label: {component: 1-D signal}})."""
    refs = references(record)
    result: dict[str, Any] = {"record": record.name, **{f"{q}/reference": r.tolist() for q, r in refs.items()}}
    for quantity, (component, band) in QUANTITIES.items():
        signals = {BANDPASS: metrics.bandpass(record.pleth, record.rate, band),
                   **{label: out[component] for label, out in outputs.items()}}
        result[quantity] = {}
        for source, signal in signals.items():
            result[quantity][source] = {}
            for estimator in metrics.RATE_ESTIMATORS:
                rates = metrics.windowed_rates(signal, record.rate, band, estimator, hop=metrics.RATE_HOP_SECONDS)
                result[quantity][source][estimator] = {**metrics.rate_errors(rates, refs[quantity]),
                                                       "rates": rates.tolist()}
    return result


def score(root: str, separators: Mapping[str, Any], records: Sequence[str] = realdata.BIDMC_RECORDS,
          progress: Any = None, offset: str = AS_RECORDED) -> list[dict[str, Any]]:
    """score_record for each BIDMC record under `root` with each {label: model or Separator}'s outputs of the
    PLETH `offset` (`separated`)."""
    models = {label: s if isinstance(s, Separator) else Separator(s) for label, s in separators.items()}
    result = []
    for name in records:
        record = realdata.read_bidmc(name, root)
        result.append(score_record(record, {label: separated(m, record, offset) for label, m in models.items()}))
        if progress:
            progress(result[-1])
    return result


def summary(per_record: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """{quantity: {source: {estimator: {statistic: value}}}}, STATISTICS: mean and median of the record MAEs (NaN
    records left out), MAE and median of all windows pooled (metrics.rate_errors)."""
    result: dict[str, Any] = {}
    for quantity in QUANTITIES:
        reference = np.concatenate([r[f"{quantity}/reference"] for r in per_record])
        result[quantity] = {}
        for source, per in per_record[0][quantity].items():
            result[quantity][source] = {}
            for estimator in per:
                maes = np.array([r[quantity][source][estimator]["mae"] for r in per_record], dtype=np.float64)
                pooled = metrics.rate_errors(np.concatenate([r[quantity][source][estimator]["rates"]
                                                             for r in per_record]), reference)
                finite = maes[np.isfinite(maes)]
                result[quantity][source][estimator] = {
                    "record_mean": float(np.mean(finite)) if finite.size else math.nan,
                    "record_median": float(np.median(finite)) if finite.size else math.nan,
                    "pooled_mae": pooled["mae"], "pooled_median": pooled["median"]}
    return result


def record_maes(per_record: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """{record: {quantity: {source: {estimator: MAE}}}} of `score`'s per-record results, the rates left out."""
    return {r["record"]: {q: {s: {e: v["mae"] for e, v in per.items()} for s, per in r[q].items()} for q in QUANTITIES}
            for r in per_record}


def push_rule(scores: Mapping[str, Any], candidate: str, references: Sequence[str]) -> list[str]:
    """Reasons not to push `candidate` (empty: it may be pushed): for each quantity and estimator in `scores`
    (a `summary`), its RULE_STATISTIC is worse (higher) than any reference source's (the band-pass, the pushed
    version), or it or that reference is missing or not finite (fails closed)."""
    reasons = []
    for quantity, sources in scores.items():
        for estimator in metrics.RATE_ESTIMATORS:
            mine = sources.get(candidate, {}).get(estimator, {}).get(RULE_STATISTIC, math.nan)
            for reference in references:
                theirs = sources.get(reference, {}).get(estimator, {}).get(RULE_STATISTIC, math.nan)
                if not (math.isfinite(mine) and math.isfinite(theirs)):
                    reasons.append(f"BIDMC {quantity} {estimator}: {candidate} {mine} or {reference} {theirs} "
                                   "missing or not finite")
                elif mine > theirs:
                    reasons.append(f"BIDMC {quantity} {estimator}: {candidate} {mine:.3f} worse than {reference} "
                                   f"{theirs:.3f} (mean of record MAEs, per minute)")
    return reasons


def check(root: str, candidate: str, pushed: str | None) -> tuple[dict[str, Any], list[str]]:
    """The push rule on BIDMC 01-26 for a candidate PPG model beside the band-pass and the pushed version (when
    there is one): ({"summary": summary, "records": {record: {quantity: {source: {estimator: MAE}}}}}, reasons).
    Without BIDMC under `root` nothing is scored and the one reason says so: a PPG candidate is not pushed unchecked."""
    if not os.path.isdir(os.path.join(root, "BIDMC")):
        return {}, [f"BIDMC not found under {root!r}: a PPG model is not pushed without its BIDMC check "
                    "(--real_data names the folder holding BIDMC/)"]
    models = {CANDIDATE: candidate, **({pushed: pushed} if pushed else {})}
    per_record = score(root, models)
    scores = summary(per_record)
    records = record_maes(per_record)
    references = [BANDPASS, *(label for label in models if label != CANDIDATE)]
    return {"summary": scores, "records": records}, push_rule(scores, CANDIDATE, references)
