"""Opening the Iceberg catalog and the two tables (created on first use).

Catalog (`cold.catalog_uri`):
- "" (default): pyiceberg SqlCatalog on SQLite, `<data_dir>/cold/catalog.db`.
- `postgresql://user:pw@host/db`: the same SqlCatalog on PostgreSQL (psycopg2 driver).
- `http://…` / `https://…`: a REST catalog; `UE_ICEBERG_REST_TOKEN` is sent as the bearer token.

Warehouse (`cold.warehouse`): "" means `<data_dir>/cold/warehouse`; a path; or `s3://bucket/prefix`
for S3-compatible storage (R2, S3, MinIO) configured by environment variables:
`UE_S3_ENDPOINT` (or `AWS_ENDPOINT_URL`), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_REGION` (default us-east-1 for R2/MinIO), `UE_S3_PATH_STYLE=true` for MinIO.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError, TableAlreadyExistsError
from pyiceberg.table import Table

from ..config import Config
from .schema import (
    DEAD_LETTER_TABLE_NAME, TABLE_NAME, TABLE_PROPERTIES, dead_letter_schema, iceberg_schema, partition_spec,
    sort_order,
)


class ColdTierError(RuntimeError):
    """The catalog or warehouse cannot be used; the message says which setting to look at."""


def cold_dir(config: Config) -> Path:
    return Path(config.data_dir).resolve() / "cold"


def warehouse_location(config: Config) -> str:
    wh = config.cold.warehouse
    if wh.startswith(("s3://", "s3a://", "gs://", "file://")):
        return wh
    path = Path(wh).resolve() if wh else cold_dir(config) / "warehouse"
    path.mkdir(parents=True, exist_ok=True)
    return f"file://{path}"


def _s3_endpoint() -> str:
    return os.environ.get("UE_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL") or ""


def _io_properties(warehouse: str) -> dict[str, str]:
    if not warehouse.startswith(("s3://", "s3a://")):
        return {}
    env = os.environ
    props = {
        "s3.endpoint": _s3_endpoint(),
        "s3.access-key-id": env.get("AWS_ACCESS_KEY_ID", ""),
        "s3.secret-access-key": env.get("AWS_SECRET_ACCESS_KEY", ""),
        "s3.region": env.get("AWS_REGION", "us-east-1"),
    }
    if env.get("UE_S3_PATH_STYLE", "").lower() in ("1", "true", "yes"):
        props["s3.force-virtual-addressing"] = "false"
    return {k: v for k, v in props.items() if v}


def open_catalog(config: Config) -> Catalog:
    uri = config.cold.catalog_uri
    warehouse = warehouse_location(config)
    props: dict[str, Any] = {"warehouse": warehouse, **_io_properties(warehouse)}
    try:
        if uri.startswith(("http://", "https://")):
            from pyiceberg.catalog.rest import RestCatalog

            if os.environ.get("UE_ICEBERG_REST_TOKEN"):
                props["token"] = os.environ["UE_ICEBERG_REST_TOKEN"]
            return RestCatalog("unified_events", uri=uri, **props)
        if uri == "":
            cold_dir(config).mkdir(parents=True, exist_ok=True)
            sql_uri = f"sqlite:///{cold_dir(config) / 'catalog.db'}"
        elif uri.startswith(("postgresql://", "postgres://")):
            sql_uri = "postgresql+psycopg2://" + uri.split("://", 1)[1]
        elif uri.startswith(("postgresql+", "sqlite:")):
            sql_uri = uri
        else:
            raise ColdTierError(f"cold.catalog_uri {uri!r}: expected \"\" (SQLite under data_dir), "
                                "postgresql://…, or an http(s):// REST catalog URI")
        return _SqlCatalog("unified_events", uri=sql_uri, **props)
    except ColdTierError:
        raise
    except Exception as exc:  # noqa: BLE001 - name the setting whatever the driver raised
        raise ColdTierError(f"cannot open the Iceberg catalog cold.catalog_uri={_redact(uri)!r}: "
                            f"{type(exc).__name__}: {exc}") from exc


class _SqlCatalog(SqlCatalog):
    """pyiceberg's SqlCatalog, whose table loads and creations, which read and write the table's
    metadata in the warehouse, fail naming the warehouse settings (`storage_errors`). Every
    `table.refresh()` is a load, so the archiver's retries report it that way too."""

    def load_table(self, identifier: Any) -> Table:
        with storage_errors(self.properties["warehouse"]):
            return super().load_table(identifier)

    def create_table(self, *args: Any, **kwargs: Any) -> Table:
        with storage_errors(self.properties["warehouse"]):
            return super().create_table(*args, **kwargs)


def _redact(uri: str) -> str:
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return uri or "(SQLite under data_dir)"


def _ensure_namespace(catalog: Catalog, namespace: str) -> None:
    try:
        catalog.create_namespace(namespace)
    except NamespaceAlreadyExistsError:
        pass


def open_tables(config: Config, catalog: Catalog | None = None) -> tuple[Table, Table]:
    """(events table, dead-letter table), created if missing."""
    catalog = catalog or open_catalog(config)
    ns = config.cold.namespace
    _ensure_namespace(catalog, ns)
    events = _load_or_create(catalog, (ns, TABLE_NAME), lambda ident: catalog.create_table(
        ident, schema=iceberg_schema(), partition_spec=partition_spec(), sort_order=sort_order(),
        properties=TABLE_PROPERTIES))
    dead = _load_or_create(catalog, (ns, DEAD_LETTER_TABLE_NAME), lambda ident: catalog.create_table(
        ident, schema=dead_letter_schema(), properties=TABLE_PROPERTIES))
    return events, dead


def load_events_table(config: Config, catalog: Catalog | None = None) -> Table:
    catalog = catalog or open_catalog(config)
    try:
        return catalog.load_table((config.cold.namespace, TABLE_NAME))
    except NoSuchTableError:
        raise ColdTierError(f"no table {config.cold.namespace}.{TABLE_NAME} in the catalog yet: "
                            "the archiver creates it on its first run") from None


def _load_or_create(catalog: Catalog, ident: tuple[str, str], create: Any) -> Table:
    try:
        return catalog.load_table(ident)
    except NoSuchTableError:
        pass
    try:
        return create(ident)
    except TableAlreadyExistsError:  # another process created it meanwhile
        return catalog.load_table(ident)


# Words in pyarrow's S3 errors (the AWS SDK's error names) and in the servers' own error codes.
_S3_REFUSED = ("ACCESS_DENIED", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "INVALID_ACCESS_KEY")
_S3_UNREACHABLE = ("NETWORK_CONNECTION", "Could not connect", "Could not resolve", "Timeout was reached")


def storage_error(exc: BaseException, warehouse: str) -> ColdTierError:
    """A failed read or write in the warehouse, as an error naming the setting most likely at fault
    (pyarrow's own message names the bucket and key, not which of our settings to look at)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    if not warehouse.startswith(("s3://", "s3a://")):
        hint = "check cold.warehouse (a directory this process can write)"
    elif any(word in text for word in _S3_REFUSED):
        hint = ("the S3 server refused the credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(and that they may read and write the bucket)")
    elif any(word in text for word in _S3_UNREACHABLE):
        hint = (f"cannot reach the S3 endpoint: check UE_S3_ENDPOINT (or AWS_ENDPOINT_URL), now "
                f"{_s3_endpoint() or 'unset (AWS itself)'!r}")
    elif "NO_SUCH_BUCKET" in text or "NoSuchBucket" in text:
        hint = "the bucket named in cold.warehouse does not exist on the S3 endpoint"
    else:
        hint = ("check cold.warehouse and the S3 environment (UE_S3_ENDPOINT, AWS_ACCESS_KEY_ID, "
                "AWS_SECRET_ACCESS_KEY, AWS_REGION, UE_S3_PATH_STYLE)")
    return ColdTierError(f"cannot use the warehouse cold.warehouse={warehouse!r}: {hint}: "
                         f"{type(exc).__name__}: {text}")


def table_warehouse(table: Table) -> str:
    """What cold.warehouse resolved to, for a table from `open_catalog` (its FileIO has the catalog's
    properties), to name in `storage_errors`."""
    return table.io.properties.get("warehouse", table.location())


@contextmanager
def storage_errors(warehouse: str) -> Iterator[None]:
    """Turn the OSErrors of pyarrow's file systems (S3 and local) into `storage_error`s."""
    try:
        yield
    except OSError as exc:
        raise storage_error(exc, warehouse) from exc
