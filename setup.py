"""Install entry point: ``pip install .`` (extras: test, test-cupy, gpu, gpu13, bench, pages, dev)."""

from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent
VERSION = (HERE / "refvae" / "_version.py").read_text().split('"')[-2]   # __version__ = "..."

setup(
    name="refvae",
    version=VERSION,
    description="Reference latent-variable models (Gaussian VAE, Bernoulli RBM, Helmholtz machines) "
                "with hand-written, gradient-checked derivatives on NumPy or CuPy",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="MIT",
    license_files=["LICENSE"],
    python_requires=">=3.10",
    packages=["refvae", "refvae.datasets", "refvae.pages", "refvae.plots", "refvae.vae", "rbm", "wakesleep"],
    package_data={"refvae": ["data/*.gz", "data/*.npz"], "refvae.pages": ["style.css"]},
    include_package_data=True,
    install_requires=["numpy>=1.24", "scipy>=1.10", "matplotlib>=3.6", "tqdm>=4.60"],
    extras_require={
        # pytest-xdist: the suite runs on every core (-n auto); scikit-learn: an oracle (factor analysis, the RBM)
        # latex2mathml, pygments: the annotated pages' equations and code (tests/test_pages.py builds them);
        # playwright: drives the system's Chromium in tests/test_pages_browser.py (its own browsers are not fetched)
        "test": ["pytest>=7", "pytest-xdist>=3", "array-api-strict>=2.2", "scikit-learn>=1.6", "latex2mathml>=3.77",
                 "pygments>=2.15", "playwright>=1.40"],
        # refvae pages: LaTeX -> MathML at build time (pure Python: the pages need no script), code highlighting
        "pages": ["latex2mathml>=3.77", "pygments>=2.15"],
        # CuPy 14 is the first with the array-API names the code calls (astype, concat)
        "gpu": ["cupy-cuda12x>=14"],
        "gpu13": ["cupy-cuda13x>=14"],
        # CuPy's real signatures for tests/test_cupy_api.py: the wheel imports without a GPU
        "test-cupy": ["cupy-cuda13x>=14"],
        "bench": ["torch>=2.0", "scikit-learn>=1.6"],
        # everything a developer runs: the tests (with xdist), the linter of .ci/run, the benchmarks' comparisons
        "dev": ["pytest>=7", "pytest-xdist>=3", "array-api-strict>=2.2", "ruff>=0.5", "torch>=2.0",
                "scikit-learn>=1.3", "threadpoolctl>=3", "latex2mathml>=3.77", "pygments>=2.15", "playwright>=1.40"],
    },
    entry_points={"console_scripts": ["refvae = refvae.app:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Intended Audience :: Science/Research",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
