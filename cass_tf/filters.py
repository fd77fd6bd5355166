"""Owns the zero-phase Butterworth band-pass: pure SciPy, free of TensorFlow, so the data workers can use it."""

from __future__ import annotations

import numpy as np
from scipy import signal as sps

FILTER_ORDER = 2  # Butterworth order per band edge, applied forwards and backwards (sosfiltfilt)


def bandpass(signal: np.ndarray, rate: float, band: tuple[float, float]) -> np.ndarray:
    """Zero-phase Butterworth band-pass (scipy.signal.butter + sosfiltfilt) of a signal along its last axis, float64.

    A band edge at or above Nyquist is dropped (high-pass only), and so is a low edge of 0 (low-pass only); raises
    ValueError for an empty band or one with no edge left.
    """
    low, high = band
    if not 0 <= low < high or (low == 0 and high >= rate / 2):
        raise ValueError(f"band must be 0 <= low < high (Hz) with an edge inside (0, rate / 2), got {band}")
    x = np.asarray(signal, dtype=np.float64)
    if low > 0 and high < rate / 2:
        sos = sps.butter(FILTER_ORDER, [low, high], btype="bandpass", fs=rate, output="sos")
    elif low > 0:
        sos = sps.butter(FILTER_ORDER, low, btype="highpass", fs=rate, output="sos")
    else:
        sos = sps.butter(FILTER_ORDER, high, btype="lowpass", fs=rate, output="sos")
    return sps.sosfiltfilt(sos, x)
