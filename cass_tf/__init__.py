"""cass_tf: Cross Adversarial Source Separation (CASS) via autoencoders, in TensorFlow/Keras."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["separate", "Separator"]


def __getattr__(name: str) -> Any:
    """Lazy top-level `separate` and `Separator` (from cass_tf.separator): `import cass_tf` does not import TensorFlow."""
    if name in __all__:
        from cass_tf import separator  # loads TensorFlow: not before the CLI has quieted it

        return getattr(separator, name)
    raise AttributeError(f"module 'cass_tf' has no attribute {name!r}")
