"""The benchmark's catalogue: images, detection runs and tags with skewed names.

Generated with numpy from a seed (same seed, same data) and bulk-loaded with COPY into a
database that the real migrations built. The shape follows what the service writes:

- images are stored over one year (2026), ids in storage order, so ``created_at`` grows
  with the id; 2 % are soft-deleted;
- 91 % were detected at ingest (for 1 % of all images it failed); 10 % of the successful
  ones were run again later with another model, for comparison; the model in use changes
  mid-year;
- model tags: about 3 per image, names Zipf-distributed over the 80 COCO classes
  (``person`` first, ``hair drier`` last), confidences spread from the detector's
  threshold (0 for OpenCV) to 1, each with a box, added when its run ran;
- human tags: half of the images carry some (about 1 per image overall), names
  Zipf-distributed over 500 names, each added some days after the image by one of a few
  users through one of a few clients; one live human tag per name and image;
- 3 % of all tags were removed later;
- tag and run ids follow the time they were added, as they would in the service.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

Column = npt.NDArray[Any]
Table = dict[str, Column]

YEAR_START = np.datetime64("2026-01-01T00:00:00", "us")
YEAR_END = np.datetime64("2027-01-01T00:00:00", "us")
MID_YEAR = np.datetime64("2026-07-01T00:00:00", "us")
SECOND_US = 1_000_000
DAY_US = 86_400 * SECOND_US

# The 80 COCO classes, most frequent first (roughly their share of COCO's boxes).
COCO_BY_FREQUENCY = (
    "person", "car", "chair", "book", "bottle", "cup", "dining table", "bowl",
    "traffic light", "handbag", "umbrella", "bird", "boat", "truck", "bench", "sheep",
    "banana", "kite", "motorcycle", "backpack", "potted plant", "cow", "wine glass",
    "carrot", "knife", "broccoli", "donut", "bicycle", "skis", "vase", "horse", "tie",
    "cell phone", "orange", "cake", "sports ball", "clock", "suitcase", "spoon",
    "surfboard", "bus", "pizza", "tv", "couch", "remote", "sink", "skateboard",
    "elephant", "dog", "fork", "zebra", "airplane", "giraffe", "laptop", "tennis racket",
    "sandwich", "train", "cat", "apple", "oven", "baseball glove", "hot dog", "frisbee",
    "baseball bat", "teddy bear", "keyboard", "mouse", "bed", "toilet",
    "refrigerator", "snowboard", "stop sign", "fire hydrant", "scissors", "microwave",
    "parking meter", "bear", "toothbrush", "toaster", "hair drier",
)  # fmt: skip
# What people type most, then adjective-noun pairs for the long tail.
_HUMAN_HEAD = (
    "outdoor", "street", "daytime", "indoor", "night", "blurry", "crowd", "portrait",
    "landscape", "kitchen", "office", "beach", "snow", "rain", "city", "park", "food",
    "vehicle", "animal", "low light", "close-up", "needs review", "duplicate", "occluded",
    "training", "validation", "holdout", "car", "dog", "cat", "person", "bicycle",
)  # fmt: skip
_ADJECTIVES = (
    "red", "blue", "green", "old", "new", "wet", "dry", "busy", "empty", "dark", "bright",
    "small", "large", "rural", "urban", "foggy",
)  # fmt: skip
_NOUNS = (
    "road", "house", "room", "field", "market", "station", "harbour", "forest", "bridge",
    "shop", "garden", "parking", "yard", "square", "tunnel", "river", "hill", "court",
    "stadium", "school", "factory", "farm", "airport", "mall", "campus", "alley", "pier",
    "desk", "table", "window",
)  # fmt: skip
HUMAN_TAG_NAMES = (
    _HUMAN_HEAD
    + tuple(f"{adjective} {noun}" for adjective in _ADJECTIVES for noun in _NOUNS)[
        : 500 - len(_HUMAN_HEAD)
    ]
)
MODEL_NAME_SKEW = 1.1  # Zipf exponent over COCO_BY_FREQUENCY
HUMAN_NAME_SKEW = 1.0  # Zipf exponent over HUMAN_TAG_NAMES

USERS = ("alice", "bob", "carol", "dave", "erin", "frank")
USER_SHARES = (0.40, 0.25, 0.15, 0.10, 0.06, 0.04)
CLIENTS = ("labelling-ui", "notebook", "cli", "pipeline")
CLIENT_SHARES = (0.60, 0.20, 0.10, 0.10)

DELETED_SHARE = 0.02
NOT_DETECTED_SHARE = 0.09
FAILED_SHARE = 0.01
RERUN_SHARE = 0.10
MODEL_TAGS_PER_RUN = 3.05  # Poisson mean; about 3 live model tags per image in all
HUMAN_TAGGED_SHARE = 0.5
EXTRA_HUMAN_TAGS = 1.0  # Poisson mean beyond the first, on the images people tagged
REMOVED_SHARE = 0.03


@dataclass(frozen=True)
class Model:
    detector: str
    model: str
    library_version: str
    sha256: str | None
    confidence_threshold: float | None
    iou_threshold: float | None
    parameters: str  # JSON text, as asyncpg copies a json column

    @property
    def version(self) -> str:
        """``DetectorInfo.model_version``: what ``model=NAME@VERSION`` matches."""
        return self.sha256[:12] if self.sha256 else self.library_version


MODELS = (
    Model("yolo", "yolo11n.pt", "ultralytics 8.3.40", "3b2c1f0e9d8a" + "1" * 52, 0.25, 0.7,
          json.dumps({"imgsz": "640"})),
    Model("yolo", "yolo11n.pt", "ultralytics 8.3.120", "7f0d5e2a41c9" + "2" * 52, 0.25, 0.7,
          json.dumps({"imgsz": "640"})),
    Model("yolo", "yolo11s.pt", "ultralytics 8.3.120", "c4e8a90b13f7" + "3" * 52, 0.1, 0.7,
          json.dumps({"imgsz": "640"})),
    Model("yolo-onnx", "yolo11n.onnx", "onnxruntime 1.20.1", "5a6b7c8d9e0f" + "4" * 52, 0.3,
          0.7, json.dumps({"imgsz": "640", "padding": "minimal"})),
    Model("opencv", "haarcascades", "opencv 4.10.0", None, None, None,
          json.dumps({"cascade": "frontalface_default"})),
)  # fmt: skip
# Which model a first run used: (shares before mid-year, shares after).
FIRST_RUN_SHARES = ((0.70, 0.00, 0.20, 0.00, 0.10), (0.00, 0.60, 0.20, 0.15, 0.05))
RERUN_SHARES = (0.00, 0.50, 0.50, 0.00, 0.00)


@dataclass(frozen=True)
class Catalogue:
    """Column arrays per table, rows in id order. Datetimes are ``datetime64[us]`` (UTC,
    NaT for NULL); floats use NaN for NULL; text columns are object arrays."""

    images: Table
    detection_runs: Table
    tags: Table

    def tables(self) -> Mapping[str, Table]:
        return {"images": self.images, "detection_runs": self.detection_runs, "tags": self.tags}


def zipf_shares(count: int, exponent: float) -> Column:
    weights = 1.0 / np.arange(1, count + 1) ** exponent
    return np.asarray(weights / weights.sum())


def generate(image_count: int, seed: int = 4) -> Catalogue:
    rng = np.random.default_rng(seed)
    images = _images(rng, image_count)
    runs = _runs(rng, images)
    tags = _tags(rng, images, runs)
    return Catalogue(images, runs, tags)


def _pick(
    rng: np.random.Generator, values: Sequence[Any], shares: Sequence[float], n: int
) -> Column:
    return np.asarray(values, dtype=object)[rng.choice(len(values), size=n, p=shares)]


def _micros(values: Column) -> Column:
    return values.astype("timedelta64[us]")


def _images(rng: np.random.Generator, n: int) -> Table:
    created_at = YEAR_START + _micros(
        np.sort(rng.integers(0, (YEAR_END - YEAR_START).astype(np.int64), n))
    )
    sha = rng.bytes(32 * n).hex()
    sha256 = np.array([sha[64 * i : 64 * i + 64] for i in range(n)], dtype=object)
    label = np.array(["image " + digest[:8] for digest in sha256], dtype=object)
    ids = np.arange(1, n + 1)
    source = np.array([f"IMG_{image_id:07d}.jpg" for image_id in ids], dtype=object)
    source[rng.random(n) < 0.2] = None  # uploads without a file name
    png = rng.random(n) < 0.2
    sizes = rng.choice([(640, 480), (1280, 720), (1920, 1080), (4032, 3024), (810, 1080)], n)
    outcome = rng.random(n)
    status = np.full(n, "succeeded", dtype=object)
    status[outcome < NOT_DETECTED_SHARE + FAILED_SHARE] = "failed"
    status[outcome < NOT_DETECTED_SHARE] = "not_requested"
    error = np.full(n, None, dtype=object)
    error[status == "failed"] = "the detector's model could not be loaded"
    deleted = rng.random(n) < DELETED_SHARE
    deleted_at = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    deleted_at[deleted] = np.minimum(
        created_at[deleted] + _micros(rng.exponential(30 * DAY_US, deleted.sum()).astype(np.int64)),
        YEAR_END,
    )
    deleted_by = np.full(n, None, dtype=object)
    deleted_by[deleted] = _pick(rng, USERS, USER_SHARES, int(deleted.sum()))
    deleted_client = np.full(n, None, dtype=object)
    deleted_client[deleted] = "labelling-ui"
    return {
        "id": ids,
        "label": label,
        "source": source,
        "sha256": sha256,
        "media_type": np.where(png, "image/png", "image/jpeg").astype(object),
        "width": sizes[:, 0],
        "height": sizes[:, 1],
        "size_bytes": rng.lognormal(13, 0.8, n).astype(np.int64) + 1,
        "created_at": created_at,
        "created_by": _pick(rng, USERS, USER_SHARES, n),
        "created_client": _pick(rng, CLIENTS, CLIENT_SHARES, n),
        "detection_status": status,
        "detection_error": error,
        "deleted_at": deleted_at,
        "deleted_by_user": deleted_by,
        "deleted_by_client": deleted_client,
    }


def _runs(rng: np.random.Generator, images: Table) -> Table:
    detected = images["detection_status"] != "not_requested"
    first_image = np.flatnonzero(detected)
    first_model = np.empty(len(first_image), dtype=np.int64)
    late = images["created_at"][first_image] >= MID_YEAR
    for half, shares in zip((~late, late), FIRST_RUN_SHARES, strict=True):
        first_model[half] = rng.choice(len(MODELS), size=int(half.sum()), p=shares)
    first_status = images["detection_status"][first_image]
    rerun = first_image[
        (first_status == "succeeded") & (rng.random(len(first_image)) < RERUN_SHARE)
    ]
    created = images["created_at"][rerun]
    rerun_at = created + _micros(
        (rng.random(len(rerun)) * (YEAR_END - created).astype(np.int64)).astype(np.int64)
    )
    image_index = np.concatenate([first_image, rerun])
    model = np.concatenate([first_model, rng.choice(len(MODELS), size=len(rerun), p=RERUN_SHARES)])
    ran_at = np.concatenate([images["created_at"][first_image], rerun_at])
    status = np.concatenate([first_status, np.full(len(rerun), "succeeded", dtype=object)])
    user = np.concatenate(
        [images["created_by"][first_image], _pick(rng, USERS, USER_SHARES, len(rerun))]
    )
    client = np.concatenate(
        [images["created_client"][first_image], np.full(len(rerun), "notebook", dtype=object)]
    )
    order = np.argsort(ran_at, kind="stable")
    model = model[order]

    def attribute(name: str) -> Column:
        return np.array([getattr(MODELS[index], name) for index in model], dtype=object)

    thresholds = np.array(
        [np.nan if m.confidence_threshold is None else m.confidence_threshold for m in MODELS]
    )
    ious = np.array([np.nan if m.iou_threshold is None else m.iou_threshold for m in MODELS])
    status = status[order]
    return {
        "id": np.arange(1, len(order) + 1),
        "image_id": images["id"][image_index[order]],
        "detector": attribute("detector"),
        "model": attribute("model"),
        "model_version": attribute("version"),
        "model_sha256": attribute("sha256"),
        "library_version": attribute("library_version"),
        "confidence_threshold": thresholds[model],
        "iou_threshold": ious[model],
        "parameters": attribute("parameters"),
        "status": status,
        "error": np.where(status == "failed", images["detection_error"][image_index[order]], None),
        "requested_by_user": user[order],
        "requested_by_client": client[order],
        "ran_at": ran_at[order],
        "_model_index": model,
    }


def _tags(rng: np.random.Generator, images: Table, runs: Table) -> Table:
    model_tags = _model_tags(rng, runs)
    human_tags = _human_tags(rng, images)
    every = {name: np.concatenate([model_tags[name], human_tags[name]]) for name in model_tags}
    count = len(every["image_id"])
    removed = rng.random(count) < REMOVED_SHARE
    removed_at = np.full(count, np.datetime64("NaT"), dtype="datetime64[us]")
    removed_at[removed] = every["added_at"][removed] + _micros(
        rng.exponential(2 * DAY_US, int(removed.sum())).astype(np.int64) + SECOND_US
    )
    every["removed_at"] = removed_at
    every["removed_by_user"] = np.full(count, None, dtype=object)
    every["removed_by_user"][removed] = _pick(rng, USERS, USER_SHARES, int(removed.sum()))
    every["removed_by_client"] = np.full(count, None, dtype=object)
    every["removed_by_client"][removed] = "labelling-ui"
    order = np.argsort(every["added_at"], kind="stable")
    tags = {name: column[order] for name, column in every.items()}
    return {"id": np.arange(1, count + 1), **tags}


def _model_tags(rng: np.random.Generator, runs: Table) -> Table:
    per_run = rng.poisson(MODEL_TAGS_PER_RUN, len(runs["id"]))
    per_run[runs["status"] != "succeeded"] = 0
    run_index = np.repeat(np.arange(len(per_run)), per_run)
    count = len(run_index)
    model = runs["_model_index"][run_index]
    threshold = np.nan_to_num(runs["confidence_threshold"][run_index], nan=0.0)
    confidence = threshold + (1 - threshold) * rng.beta(1.3, 1.3, count)
    x_min, y_min = rng.random(count) * 0.8, rng.random(count) * 0.8
    width, height = 0.02 + rng.random(count) * 0.18, 0.02 + rng.random(count) * 0.18
    versions = np.array([m.version for m in MODELS], dtype=object)
    names = np.array(COCO_BY_FREQUENCY, dtype=object)
    return {
        "image_id": runs["image_id"][run_index],
        "name": names[rng.choice(len(names), count, p=zipf_shares(len(names), MODEL_NAME_SKEW))],
        "source": np.full(count, "model", dtype=object),
        "confidence": confidence,
        "x_min": x_min,
        "y_min": y_min,
        "x_max": x_min + width,
        "y_max": y_min + height,
        "run_id": runs["id"][run_index],
        "model_name": runs["model"][run_index],
        "model_version": versions[model],
        "added_by_user": runs["requested_by_user"][run_index],
        "added_by_client": runs["requested_by_client"][run_index],
        "added_at": runs["ran_at"][run_index],
    }


def _human_tags(rng: np.random.Generator, images: Table) -> Table:
    n = len(images["id"])
    per_image = np.where(
        rng.random(n) < HUMAN_TAGGED_SHARE, 1 + rng.poisson(EXTRA_HUMAN_TAGS, n), 0
    )
    image_index = np.repeat(np.arange(n), per_image)
    shares = zipf_shares(len(HUMAN_TAG_NAMES), HUMAN_NAME_SKEW)
    name_index = rng.choice(len(HUMAN_TAG_NAMES), len(image_index), p=shares)
    # One live human tag per name and image (the unique index): drop repeats.
    pairs = np.unique(image_index.astype(np.int64) * len(HUMAN_TAG_NAMES) + name_index)
    image_index, name_index = pairs // len(HUMAN_TAG_NAMES), pairs % len(HUMAN_TAG_NAMES)
    count = len(pairs)
    created = images["created_at"][image_index]
    delay = rng.exponential(5 * DAY_US, count).astype(np.int64) + SECOND_US
    added_at = np.minimum(created + _micros(delay), YEAR_END - np.timedelta64(1, "s"))
    no_float = np.full(count, np.nan)
    return {
        "image_id": images["id"][image_index],
        "name": np.array(HUMAN_TAG_NAMES, dtype=object)[name_index],
        "source": np.full(count, "human", dtype=object),
        "confidence": no_float,
        "x_min": no_float,
        "y_min": no_float,
        "x_max": no_float,
        "y_max": no_float,
        "run_id": np.full(count, -1),  # no run: NULL when copied
        "model_name": np.full(count, None, dtype=object),
        "model_version": np.full(count, None, dtype=object),
        "added_by_user": _pick(rng, USERS, USER_SHARES, count),
        "added_by_client": _pick(rng, CLIENTS[:3], (0.75, 0.15, 0.10), count),
        "added_at": added_at,
    }


# Loading -------------------------------------------------------------------------------

CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class LoadReport:
    rows: dict[str, int]
    copy_seconds: dict[str, float]
    index_seconds: float
    vacuum_seconds: float


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy ``postgresql+asyncpg://`` URL as asyncpg's own DSN."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def load(url: str, catalogue: Catalogue) -> LoadReport:
    """COPY the catalogue into a migrated, empty database, as a restore would: the secondary
    indexes the migrations made are dropped first and rebuilt from their own definitions
    afterwards, foreign keys are not checked row by row (the generator keeps them), then
    VACUUM ANALYZE leaves the tables as autovacuum would."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        tables = catalogue.tables()
        for table, columns in tables.items():
            await _check_columns(connection, table, _copied(columns))
        indexes = await connection.fetch(
            """
            SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS ddl
            FROM pg_index i
            WHERE i.indrelid = ANY($1::regclass[]) AND NOT i.indisprimary
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
            """,
            list(tables),
        )
        for index in indexes:
            await connection.execute(f"DROP INDEX {index['name']}")
        await connection.execute("SET session_replication_role = replica")
        copy_seconds: dict[str, float] = {}
        for table, columns in tables.items():
            started = time.perf_counter()
            copied = _copied(columns)
            await connection.copy_records_to_table(
                table, records=_records(copied), columns=list(copied)
            )
            copy_seconds[table] = time.perf_counter() - started
        await connection.execute("RESET session_replication_role")
        started = time.perf_counter()
        for index in indexes:
            await connection.execute(index["ddl"])
        for table in tables:
            await connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        index_seconds = time.perf_counter() - started
        started = time.perf_counter()
        await connection.execute("VACUUM (ANALYZE) images, detection_runs, tags")
        vacuum_seconds = time.perf_counter() - started
    finally:
        await connection.close()
    return LoadReport(
        rows={table: len(columns["id"]) for table, columns in tables.items()},
        copy_seconds=copy_seconds,
        index_seconds=index_seconds,
        vacuum_seconds=vacuum_seconds,
    )


def _copied(columns: Table) -> Table:
    return {name: column for name, column in columns.items() if not name.startswith("_")}


async def _check_columns(connection: asyncpg.Connection, table: str, columns: Table) -> None:
    """Stop with a clear message when the migrations and the generator disagree."""
    rows = await connection.fetch(
        """
        SELECT column_name, is_nullable = 'NO' AND column_default IS NULL
                            AND is_identity = 'NO' AS required
        FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1
        """,
        table,
    )
    existing = {row["column_name"]: row["required"] for row in rows}
    unknown = sorted(set(columns) - set(existing))
    missing = sorted(
        name for name, required in existing.items() if required and name not in columns
    )
    if unknown or missing:
        raise SystemExit(
            f"the migrated {table!r} table and bench/search/dataset.py disagree: "
            f"generated but not in the table: {unknown}; required but not generated: {missing}"
        )


def _records(columns: Table) -> Iterator[tuple[Any, ...]]:
    count = len(next(iter(columns.values())))
    for start in range(0, count, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, count)
        yield from zip(
            *(_python_values(column[start:stop]) for column in columns.values()), strict=True
        )


def _python_values(column: Column) -> list[Any]:
    """Python values asyncpg can copy: aware datetimes, None for NaT, NaN and run -1."""
    if column.dtype.kind == "M":
        return [
            None if value is None else value.replace(tzinfo=UTC) for value in column.astype(object)
        ]
    if column.dtype.kind == "f":
        values = column.astype(object)
        values[np.isnan(column)] = None
        return values.tolist()  # type: ignore[no-any-return]
    if column.dtype.kind == "i" and (column < 0).any():
        values = column.astype(object)
        values[column < 0] = None
        return values.tolist()  # type: ignore[no-any-return]
    return column.tolist()  # type: ignore[no-any-return]


def describe(catalogue: Catalogue) -> str:
    """One line of what was generated, to print beside the figures."""
    images, tags = catalogue.images, catalogue.tags
    live = np.isnat(tags["removed_at"])
    model = live & (tags["source"] == "model")
    human = live & (tags["source"] == "human")
    n = len(images["id"])
    return (
        f"{n:,} images ({np.count_nonzero(~np.isnat(images['deleted_at'])):,} deleted), "
        f"{len(catalogue.detection_runs['id']):,} runs, {len(tags['id']):,} tags "
        f"({model.sum() / n:.2f} live model + {human.sum() / n:.2f} live human per image, "
        f"{(~live).sum():,} removed)"
    )
