"""The DuckDB store: schema, migrations, the single writer."""

from slicewise.store.database import Store
from slicewise.store.schema import SCHEMA_VERSION

__all__ = ["Store", "SCHEMA_VERSION"]
