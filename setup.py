"""Installs cass_tf and its `cass-tf` command: `pip install .`, `.[test]`, `.[gpu]`, `.[serving]`, `.[biosignal]`."""

from setuptools import find_packages, setup

TF = "tensorflow>=2.21,<2.22"
BIOSIGNAL = ["pyedflib", "wfdb"]  # cass_tf.records: EDF/BDF and WFDB files (cass_tf.realdata: ADFECGDB)
LIBRARY_CHECKS = ["neurokit2", "mne"]  # pipelines/compare_libraries.py (NeuroKit2 detectors), tests' second EDF reader

setup(
    name="cass_tf",
    version="0.1.0",
    description="CASS: Cross Adversarial Source Separation via Autoencoder, in TensorFlow/Keras",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["cass_tf", "cass_tf.*"]),
    install_requires=[TF, "keras>=3.12", "numpy", "scipy", "signalz", "soundfile", "matplotlib", "tensorboard"],
    extras_require={
        "gpu": ["tensorflow[and-cuda]>=2.21,<2.22"],
        "serving": ["tensorflow-serving-api>=2.21,<2.22"],
        "biosignal": [*BIOSIGNAL, *LIBRARY_CHECKS],
        "test": ["pytest", "pytest-xdist", "hypothesis", "tensorflow-serving-api>=2.21,<2.22", *BIOSIGNAL,
                 *LIBRARY_CHECKS],  # in CI (pytest-xdist: the README's `-n 2`)
    },
    package_data={"cass_tf": ["py.typed"]},
    entry_points={"console_scripts": ["cass-tf = cass_tf.cli:main"]},
)
