"""Hourly prices: the catalog (bundled snapshot, refresh from AWS) and prices the user gives.

Kept free of heavy imports: boto3 is imported only by ``harness.pricing.refresh``.
"""

from harness.pricing.catalog import Catalog, load_catalog, save_catalog
from harness.runfile.price import PURCHASE_OPTIONS, Price

__all__ = ["PURCHASE_OPTIONS", "Catalog", "Price", "load_catalog", "save_catalog"]
