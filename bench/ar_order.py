"""Picks metrics.AR_ORDER on synthetic PPG only (configs/ppg.json, data seed 7, 24 recordings; never BIDMC).

    python bench/ar_order.py

Prints, per AR order, the "ar" estimator's mean rate error (per minute; 32-s windows every 16 s) on the true
respiratory and heart components and on the mixture band-passed to each band, then the same for the other
estimators. The order with the lowest sum of the four is metrics.AR_ORDER.
"""

from __future__ import annotations

import os
import sys

import numpy as np

if __package__ in (None, ""):  # run as a script from a checkout: make the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cass_tf import metrics  # noqa: E402
from cass_tf.config import load_config  # noqa: E402
from cass_tf.data import ppg  # noqa: E402

ORDERS = (4, 6, 8, 10, 12, 16, 20)
BANDS = {"respiratory": metrics.BREATHING_BAND, "heart": metrics.PULSE_BAND}


def errors(recordings: list, rate: int, estimate) -> list[float]:
    """Mean over recordings of the window MAE, for (true, band-passed mixture) x (respiratory, heart)."""
    result = []
    for component, band in BANDS.items():
        for source in ("true", "mixture"):
            maes = []
            for r in recordings:
                x = r.components[component] if source == "true" else metrics.bandpass(r.mixture, rate, band)
                reference = metrics.windowed_event_rates(r.events[component], x.size, rate,
                                                         hop=metrics.RATE_HOP_SECONDS)
                maes.append(metrics.rate_errors(estimate(x, band), reference)["mae"])
            result.append(float(np.mean(maes)))
    return result


def main() -> None:
    config = load_config("configs/ppg.json", ["seed=7", "data.ppg.train_recordings=1", "data.ppg.test_recordings=24"])
    recordings, rate = ppg.load(config)["test"], config.data.sample_rate
    windows = lambda x: metrics.rate_windows(x.size, rate, hop=metrics.RATE_HOP_SECONDS)  # noqa: E731
    print("estimator  respiratory(true, mixture)  heart(true, mixture)  sum")
    for order in ORDERS:
        e = errors(recordings, rate,
                   lambda x, band, order=order: np.array([metrics.ar_rate(x[a:b], rate, band, order)
                                                        for a, b in windows(x)]))
        print(f"ar{order:<8} " + "  ".join(f"{v:.2f}" for v in e) + f"  {sum(e):.2f}", flush=True)
    for method in ("spectral", "peaks"):
        e = errors(recordings, rate, lambda x, band, method=method: metrics.windowed_rates(
            x, rate, band, method, hop=metrics.RATE_HOP_SECONDS))
        print(f"{method:<10} " + "  ".join(f"{v:.2f}" for v in e) + f"  {sum(e):.2f}", flush=True)


if __name__ == "__main__":
    main()
