"""Demo data: a deterministic generator of multi-dataset retail data, plus real Adobe sample files.

>>> from tessera.demo import generate
>>> demo = generate(100, seed=42)
>>> sorted(demo.counts())[:2]
['call_center', 'crm_profiles']
>>> next(iter(demo.dataset("crm_profiles")))["identityMap"]["CRMID"][0]["primary"]
True

``write(dir, people)`` writes every dataset as JSON lines and Parquet with a ``manifest.json``;
``REAL_DATASETS`` describes the shipped Luma events and CRM files and how to read them.
"""

from .generator import REFERENCE_TIME, DemoData, DemoDataset, GroundTruth, generate
from .real import REAL_DATASETS, RealDataset
from .write import write

__all__ = [
    "REAL_DATASETS",
    "REFERENCE_TIME",
    "DemoData",
    "DemoDataset",
    "GroundTruth",
    "RealDataset",
    "generate",
    "write",
]
