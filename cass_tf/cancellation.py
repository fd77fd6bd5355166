"""Owns maternal cancellation: maternal ECG template subtraction on abdominal leads, the classical references' first
step (cass_tf.realdata) and the front end of models with model.cancellation "maternal_template".

Template subtraction (fixed textbook rule; thresholds are metrics.py's, chosen on synthetic data): the lead is
high-passed at BASELINE_HZ; maternal R peaks are found by events.r_peaks (the maternal QRS dominates an abdominal lead)
on the lead, or on all leads of a recording together (fusion.maternal_peaks); around each, a segment from
-MATERNAL_BEFORE to +MATERNAL_AFTER of the median RR; the template is the mean of the TEMPLATE_BEATS nearest
maternal beats (follows slow morphology change), fitted to the beat by least squares with a gain and a sub-sample
shift (`fitted`), and subtracted; a beat cut by the signal's start or end gets the part of its template inside the
signal.

As a model's front end (`cancel`): the network separates the residual, whose maternal part is what the template
missed, and the templates are added back to its maternal output, so that the model's outputs still estimate the
whole maternal and fetal ECG. A multi-lead model also sees the templates, as leads of their own after the
residual leads, so that it knows where the maternal beats were (a remnant lies under them; a fetal beat may not).
Training data get the same transform (`cancelled`), so the network learns the residuals the rule leaves on synthetic
data; nothing in the rule is fitted.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np

from cass_tf import fusion
from cass_tf.events import r_peaks
from cass_tf.filters import bandpass

MATERNAL_BEFORE, MATERNAL_AFTER = 0.35, 0.65  # template segment around a maternal R peak, fractions of the median RR
TEMPLATE_BEATS = 20
BASELINE_HZ = fusion.BASELINE_HZ  # high-pass applied before template subtraction (removes wander, keeps QRS/T)
MATERNAL = "maternal"  # the component the templates are added back to
MAX_SHIFT = 0.5  # samples: the misalignment of a beat against the template's sample grid
MIN_SECONDS = 2.0  # `cancel` leaves shorter recordings whole: two maternal beats are needed for a template


def template_subtraction(channel: np.ndarray, rate: float,
                         peaks: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """(residual, maternal R peaks): the high-passed channel minus a scaled local mean maternal beat at each peak;
    the peaks are detected on the channel unless given (e.g. fusion.maternal_peaks of all leads)."""
    x = bandpass(channel, rate, (BASELINE_HZ, rate / 2))
    peaks = r_peaks(x, rate, "maternal") if peaks is None else np.asarray(peaks, dtype=np.int64)
    residual = x.copy()
    if peaks.size < 2:
        return residual, peaks
    rr = float(np.median(np.diff(peaks)))
    before, after = int(MATERNAL_BEFORE * rr), int(MATERNAL_AFTER * rr)
    inside = peaks[(peaks >= before) & (peaks + after <= x.size)]
    if inside.size == 0:
        return residual, peaks
    segments = np.stack([x[p - before:p + after] for p in inside])
    half = TEMPLATE_BEATS // 2
    for p in peaks:  # beats cut by the signal's edges get the part of their template that fits
        k = int(np.clip(np.searchsorted(inside, p), 0, inside.size - 1))
        lo = max(0, min(k - half, inside.size - TEMPLATE_BEATS))
        template = segments[lo:lo + TEMPLATE_BEATS].mean(axis=0)
        start, end = max(0, p - before), min(x.size, p + after)
        residual[start:end] -= fitted(x[start:end], template, start - (p - before))
    return residual, peaks


def fitted(beat: np.ndarray, template: np.ndarray, first: int) -> np.ndarray:
    """The least-squares fit to `beat` of template[first:first + beat.size] with a gain and a shift of at most
    MAX_SHIFT samples (first order: the template plus a multiple of its derivative). Beats fall between samples and
    the template, an average of many, cannot fall with each; the bound keeps the shift to that, so that it cannot
    fit away a fetal QRS under the maternal one."""
    derivative = np.gradient(template)
    part = slice(first, first + beat.size)
    gain, slope = np.linalg.lstsq(np.stack([template[part], derivative[part]]).T, beat, rcond=None)[0]
    shift = float(np.clip(slope / gain, -MAX_SHIFT, MAX_SHIFT)) if gain else 0.0
    shape = template[part] + shift * derivative[part]
    return float(beat @ shape) / float(shape @ shape) * shape if shape.any() else np.zeros_like(beat)


def template_subtraction_leads(abdomen: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(residuals (leads, samples), maternal R peaks): template_subtraction of each lead at the maternal peaks of all
    leads together (fusion.maternal_peaks)."""
    maternal = fusion.maternal_peaks(abdomen, rate)
    return np.stack([template_subtraction(lead, rate, maternal)[0] for lead in abdomen]), maternal


def cancel(leads: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(residuals, templates), float32 of `leads`' shape ((samples,) or (leads, samples), one recording): the
    templates are what template_subtraction takes from each lead high-passed at BASELINE_HZ (one lead finds its own
    maternal peaks, several find them together); the residuals are the leads as given minus the templates, so the
    maternal ECG's content below BASELINE_HZ stays in them (and in what a model may give back). A recording shorter
    than MIN_SECONDS has no templates (zeros)."""
    x = np.asarray(leads, dtype=np.float64)
    rows = x.reshape(-1, x.shape[-1])
    if rows.shape[1] < MIN_SECONDS * rate:
        return x.astype(np.float32), np.zeros(x.shape, np.float32)
    if rows.shape[0] == 1:
        residuals = template_subtraction(rows[0], rate)[0][None]
    else:
        residuals = template_subtraction_leads(rows, rate)[0]
    templates = bandpass(rows, rate, (BASELINE_HZ, rate / 2)) - residuals
    return (rows - templates).reshape(x.shape).astype(np.float32), templates.reshape(x.shape).astype(np.float32)


def around(x: np.ndarray, rate: float, multilead: bool,
           separate: Callable[[np.ndarray], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """A cancellation model's separation of one recording `x` ((samples,) or (leads, samples)): `separate` (the
    networks) of its residuals (`cancel`), for a multi-lead model followed by its templates as leads of their own, of
    which only the residual leads' outputs are kept; the templates added back to the maternal output. Outputs have
    x's shape."""
    residuals, templates = cancel(x, rate)
    if not multilead:
        outputs = {n: np.reshape(v, x.shape) for n, v in separate(residuals).items()}
    else:
        leads = residuals.reshape(-1, x.shape[-1])
        both = separate(np.concatenate([leads, templates.reshape(leads.shape)]))
        outputs = {n: np.asarray(v)[..., :leads.shape[0], :].reshape(x.shape) for n, v in both.items()}
    outputs[MATERNAL] = outputs[MATERNAL] + templates
    return outputs


@dataclasses.dataclass(frozen=True)
class Cancelled:
    """A recording as a cancellation model's training sees it: the residual mixture and its parts."""

    mixture: np.ndarray
    components: dict[str, np.ndarray]


def cancelled(mixture: np.ndarray, components: dict[str, np.ndarray], rate: float, templates_as_leads: bool = False
              ) -> Cancelled:
    """The residual of `mixture` (`cancel`) and the components it holds, float32: the maternal one minus the
    templates (what the rule missed), the others as they are. `templates_as_leads` (a multi-lead model's input,
    (leads, samples) in): the templates follow the residual leads as leads of their own, each all maternal (its other
    components zero), (2 leads, samples) out."""
    residual, templates = cancel(mixture, rate)
    parts = {name: np.asarray(value, np.float64) for name, value in components.items()}
    parts[MATERNAL] = parts[MATERNAL] - templates
    if templates_as_leads:
        residual = np.concatenate([residual, templates])
        parts = {name: np.concatenate([value, templates if name == MATERNAL else np.zeros_like(templates)])
                 for name, value in parts.items()}
    return Cancelled(residual, {name: value.astype(np.float32) for name, value in parts.items()})
