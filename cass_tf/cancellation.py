"""Owns maternal cancellation: maternal ECG template subtraction on abdominal leads, the classical references' first
step (cass_tf.realdata).

Template subtraction (fixed textbook rule; thresholds are metrics.py's, chosen on synthetic data): the lead is
high-passed at BASELINE_HZ; maternal R peaks are found by events.r_peaks (the maternal QRS dominates an abdominal
lead) on the lead, or on all leads of a recording together (fusion.maternal_peaks); around each, a segment from
-MATERNAL_BEFORE to +MATERNAL_AFTER of the median RR; the template is the mean of the TEMPLATE_BEATS nearest maternal
beats (follows slow morphology change), scaled to the beat by least squares, and subtracted; a beat cut by
the signal's start or end gets the part of its template inside the signal.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from cass_tf import fusion
from cass_tf.events import r_peaks
from cass_tf.filters import bandpass

MATERNAL_BEFORE, MATERNAL_AFTER = 0.35, 0.65  # template segment around a maternal R peak, fractions of the median RR
TEMPLATE_BEATS = 20
BASELINE_HZ = fusion.BASELINE_HZ  # high-pass applied before template subtraction (removes wander, keeps QRS/T)


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
        template = template[start - (p - before):end - (p - before)]
        gain = float(x[start:end] @ template) / float(template @ template) if template.any() else 0.0
        residual[start:end] -= gain * template
    return residual, peaks


def template_subtraction_leads(abdomen: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(residuals (leads, samples), maternal R peaks): template_subtraction of each lead at the maternal peaks of all
    leads together (fusion.maternal_peaks)."""
    maternal = fusion.maternal_peaks(abdomen, rate)
    return np.stack([template_subtraction(lead, rate, maternal)[0] for lead in abdomen]), maternal
