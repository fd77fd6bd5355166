"""Owns training precision: what `train.precision` means on this machine (a Keras dtype policy), and why.

    float32          everything in float32
    mixed_bfloat16   convolutions and dense layers compute in bfloat16, variables stay float32 (no loss scaling:
                     bfloat16 has float32's exponent range)
    mixed_float16    float16 compute with dynamic loss scaling (GPUs older than compute capability 8.0)
    auto             mixed_bfloat16 where the device runs bfloat16 natively (a CPU with AMX-BF16 or AVX512-BF16, a GPU
                     of compute capability >= 8.0), mixed_float16 on older GPUs, float32 otherwise

Whatever the policy, the layers that must stay float32 are built float32 (cass_tf.models.resnet9: the network input
and complex mask, the decoder's output head, the discriminator logit), the STFT/iSTFT and the losses run on their
float32 outputs, and the optimizers keep float32 master weights and slots. A model is built under the policy
(`policy_scope`) and the global policy is restored afterwards, so a model restored for export or separation in the
same process is float32.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator

import keras
import tensorflow as tf

CHOICES = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of native bfloat16 arithmetic on x86


@dataclasses.dataclass(frozen=True)
class Precision:
    """A resolved `train.precision`: the Keras dtype policy and the reason it was chosen."""

    policy: str
    reason: str

    @property
    def loss_scaling(self) -> bool:
        """float16 gradients underflow without loss scaling; bfloat16 and float32 need none."""
        return self.policy == "mixed_float16"

    def describe(self) -> str:
        return f"precision {self.policy} ({self.reason})"


def resolve(setting: str, gpu_capabilities: list[tuple[int, int]] | None = None,
            cpu_flags: set[str] | None = None) -> Precision:
    """The policy `setting` (one of CHOICES) stands for here; `auto` looks at the first GPU TensorFlow sees, else at
    the CPU's flags (both found when not given)."""
    if setting not in CHOICES:
        raise ValueError(f"train.precision: must be one of {list(CHOICES)}, got {setting!r}")
    if setting != "auto":
        return Precision(setting, "train.precision")
    capabilities = visible_gpu_capabilities() if gpu_capabilities is None else gpu_capabilities
    if capabilities:
        major, minor = capabilities[0]
        if (major, minor) >= (8, 0):
            return Precision("mixed_bfloat16", f"auto: GPU compute capability {major}.{minor} >= 8.0 runs bfloat16")
        return Precision("mixed_float16", f"auto: GPU compute capability {major}.{minor} < 8.0, float16 with loss "
                                          "scaling")
    native = sorted(set(CPU_BF16_FLAGS) & (read_cpu_flags() if cpu_flags is None else cpu_flags))
    if native:
        return Precision("mixed_bfloat16", f"auto: no GPU, the CPU has {' and '.join(native)}")
    return Precision("float32", f"auto: no GPU and no bfloat16 units on the CPU (none of {', '.join(CPU_BF16_FLAGS)})")


def read_cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags Linux reports (the first processor's `flags` line); empty where there is no such file."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "flags":
                    return set(value.split())
    except OSError:
        pass
    return set()


def visible_gpu_capabilities() -> list[tuple[int, int]]:
    """(major, minor) compute capability of each GPU TensorFlow sees ((0, 0) where it does not say)."""
    return [tuple(tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)))
            for gpu in tf.config.list_physical_devices("GPU")]


@contextlib.contextmanager
def policy_scope(policy: str) -> Iterator[None]:
    """Keras' global dtype policy set to `policy` while models are built in the block, then restored."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
