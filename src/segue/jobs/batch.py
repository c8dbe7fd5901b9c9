"""Batch top-K: the champion's list for every known user, or for every playlist of a file, as Parquet.

    segue batch recommend --task user-items --out DIR [--engine local|ray] [--k K]
    segue batch recommend --task next-song --playlists FILE --out DIR

The driver resolves ``models:/<registered_name>@champion`` once and pins that version, splits the
ids into batches of ``batch.batch_size`` and hands each batch to a ``ListScorer``: a
``ServingModel`` (the server's own), so every list is the server's list for that user or
playlist, ranked by ``segue.ranking.postprocess`` under the ``serving`` rules and the ban list as
read when the job starts. The local engine scores the batches in this process; the Ray engine
(``segue[ray]``) makes the same batches a Ray dataset, one block each, and maps them with
``RayListScorer`` actors, each loading the pinned version from the registry once. Both write the
table format of ``segue.serving.precomputed`` and its manifest last; on the same input they write
the same rows.

Ray joins the cluster at ``RAY_ADDRESS`` when it is set (every node needs Segue installed and
reach to the tracking store), else starts a local one for the job.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from segue.data.input_formats import InputError
from segue.data.playlist_readers import PlaylistRecord, find_playlist_files, read_playlist_file
from segue.models.base import TASKS
from segue.ranking.ban_list import EMPTY_BAN_LIST, BanList, BanListError, parse_ban_list
from segue.ranking.postprocess import PostProcessConfig
from segue.serving.matching import MatchBudget
from segue.serving.precomputed import (
    TABLE_SCHEMA,
    TableManifest,
    ban_list_digest,
    lists_table,
    table_files,
    write_manifest,
)
from segue.serving.recommender import ListRules, ModelVersion, ServingModel
from segue.settings import Settings
from segue.tracking.package import ModelPackage
from segue.tracking.package_cache import load_champion, load_version
from segue.tracking.registry import Registry, open_registry
from segue.tracking.stores import absolute_store

logger = logging.getLogger(__name__)

ENGINES = ("local", "ray")
LOCAL_FILE = "part-00000.parquet"
RAY_EXTRA_HINT = "pip install 'segue[ray]'"


class BatchError(ValueError):
    """Bad input for a batch run; the message names the option at fault."""


@dataclass(frozen=True)
class ScoringPlan:
    """Everything a scorer needs besides the package; small and picklable, so Ray ships it."""

    settings_json: str  # for actors opening the registry themselves
    task: str
    registered_name: str
    version: str
    k: int
    config: PostProcessConfig
    ban_list: BanList
    fuzzy_threshold: float
    match_budget: MatchBudget


class ListScorer:
    """One batch of ids in, their lists out (a table in the ``TABLE_SCHEMA``), as serving ranks."""

    def __init__(self, plan: ScoringPlan, package: ModelPackage) -> None:
        self.plan = plan
        self.model = ServingModel(
            plan.task,
            ModelVersion(plan.registered_name, plan.version),
            package,
            plan.fuzzy_threshold,
            match_budget=plan.match_budget,
        )
        self.rules = ListRules(plan.config, plan.ban_list)

    def __call__(self, batch: pd.DataFrame) -> pa.Table:
        model, k, rules = self.model, self.plan.k, self.rules
        users = [str(user) for user in batch["user"]]
        if "songs" in batch.columns:
            requests = [
                model.next_songs_request([str(song) for song in songs], k, rules)
                for songs in batch["songs"]
            ]
        else:
            requests = [model.user_request(user, k, rules) for user in users]
        answers = model.recommend_many(requests)
        return lists_table(
            users,
            [[(str(model.keys[e.item]), e.score) for e in answer.items] for answer in answers],
            [answer.fallback for answer in answers],
            self.plan.registered_name,
            self.plan.version,
        )


class RayListScorer:
    """A Ray actor's scorer: loads the pinned version from the registry once, then scores
    every batch Ray hands it."""

    def __init__(self, plan: ScoringPlan) -> None:
        settings = Settings.model_validate_json(plan.settings_json)
        _, package = load_version(open_registry(settings), plan.task, plan.version)
        self.scorer = ListScorer(plan, package)

    def __call__(self, batch: pd.DataFrame) -> pa.Table:
        return self.scorer(batch)


@dataclass(frozen=True)
class BatchResult:
    out_dir: Path
    manifest: TableManifest
    seconds: float
    rejected_playlists: int = 0
    duplicate_playlists: int = 0


def recommend_batch(
    settings: Settings,
    task: str,
    out_dir: str | Path,
    *,
    engine: str = "local",
    playlists: str | Path | None = None,
    k: int | None = None,
    progress: bool = True,
    registry: Registry | None = None,
) -> BatchResult:
    """Write the champion's top-``k`` list (default ``serving.default_k``) of every known user,
    or of every playlist in ``playlists`` (next-song), to ``out_dir``."""
    started = time.perf_counter()
    depth = settings.serving.default_k if k is None else k
    _check_request(settings, task, engine, playlists, depth)
    out = _empty_output_dir(Path(out_dir))
    ban_list = _read_ban_list(settings)
    registry = registry or open_registry(settings)
    champion, package = load_champion(registry, task)
    rejected = duplicates = 0
    if playlists is None:
        cases = pd.DataFrame({"user": sorted(package.user_histories)})
        if cases.empty:
            raise BatchError(f"{champion.name} version {champion.version} knows no users")
    else:
        cases, rejected, duplicates = read_playlist_cases(playlists, progress=progress)
    plan = ScoringPlan(
        settings_json=_portable(settings).model_dump_json(),
        task=task,
        registered_name=champion.name,
        version=champion.version,
        k=depth,
        config=PostProcessConfig.from_settings(settings.serving),
        ban_list=ban_list,
        fuzzy_threshold=settings.serving.fuzzy_threshold,
        # The per-request time budget guards a server's latency; a batch matches every song the
        # same way on every run and engine.
        match_budget=replace(MatchBudget.from_settings(settings.serving), milliseconds=math.inf),
    )
    batches = list(_batches(cases, settings.batch.batch_size))
    out.mkdir(parents=True, exist_ok=True)
    if engine == "local":
        _score_locally(plan, package, batches, out, progress)
    else:
        _score_on_ray(plan, batches, out, settings, progress)
    manifest = TableManifest(
        task=task,
        registered_name=champion.name,
        version=champion.version,
        algorithm=package.algorithm,
        k=depth,
        postprocess=plan.config,
        ban_list_sha256=ban_list_digest(ban_list),
        lists=len(cases),
        rows=sum(pq.ParquetFile(path).metadata.num_rows for path in table_files(out)),
        engine=engine,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    write_manifest(out, manifest)
    return BatchResult(out, manifest, time.perf_counter() - started, rejected, duplicates)


def read_playlist_cases(
    path: str | Path, *, progress: bool = True
) -> tuple[pd.DataFrame, int, int]:
    """Playlists of a file (any format ``segue ingest playlists`` reads) as ``user`` (the
    playlist id) and ``songs``; with the number of records rejected and of repeated ids (the
    first playlist of an id is kept)."""
    try:
        files = find_playlist_files(path)
    except InputError as error:
        raise BatchError(f"--playlists: {error}") from error
    ids: list[str] = []
    songs: list[list[str]] = []
    seen: set[str] = set()
    rejected = duplicates = 0
    for file, input_format in files:
        for record in read_playlist_file(file, input_format, progress=progress):
            if not isinstance(record, PlaylistRecord):
                rejected += 1
            elif record.playlist_id in seen:
                duplicates += 1
            else:
                seen.add(record.playlist_id)
                ids.append(record.playlist_id)
                songs.append([song for song in record.songs if isinstance(song, str)])
    if not ids:
        raise BatchError(f"--playlists: {path} holds no readable playlist")
    if rejected or duplicates:
        logger.warning(
            "%s: %d records rejected, %d repeated playlist ids skipped", path, rejected, duplicates
        )
    return pd.DataFrame({"user": ids, "songs": songs}), rejected, duplicates


def _check_request(
    settings: Settings, task: str, engine: str, playlists: str | Path | None, k: int
) -> None:
    if task not in TASKS:
        raise BatchError(f"--task: unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if engine not in ENGINES:
        raise BatchError(f"--engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    if k < 1:
        raise BatchError(f"--k: must be at least 1, got {k}")
    if task == "next-song" and playlists is None:
        raise BatchError(
            "--playlists: next-song lists are made for playlists; give a playlist file "
            "(next-song packages keep no known users)"
        )
    if task == "user-items" and playlists is not None:
        raise BatchError(
            "--playlists: only next-song reads playlists; user-items scores every known user "
            "of the champion"
        )
    if engine == "ray":
        try:
            import ray  # noqa: F401
        except ImportError as error:
            raise BatchError(f"--engine ray: Ray is not installed ({RAY_EXTRA_HINT})") from error


def _empty_output_dir(out: Path) -> Path:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BatchError(f"--out: {out} exists and is not an empty directory")
    return out


def _read_ban_list(settings: Settings) -> BanList:
    """The ban list as serving would read it now, but a malformed file fails the job instead of
    being skipped: a batch runs unattended, and its lists are served for a long time."""
    path = settings.serving.ban_list_file
    if path is None:
        return EMPTY_BAN_LIST
    if not path.exists():
        logger.warning("serving.ban_list_file %s is missing; nothing is banned", path)
        return EMPTY_BAN_LIST
    try:
        return parse_ban_list(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, BanListError) as error:
        raise BatchError(f"serving.ban_list_file: {error}") from error


def _portable(settings: Settings) -> Settings:
    """Settings whose store and cache paths mean the same in any working directory."""
    settings = absolute_store(settings)
    tracking = settings.tracking.model_copy(
        update={
            "model_cache_dir": settings.tracking.model_cache_dir.resolve(),
            "artifact_root": settings.tracking.artifact_root.resolve(),
        }
    )
    return settings.model_copy(update={"tracking": tracking})


def _batches(cases: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(cases), size):
        yield cases.iloc[start : start + size].reset_index(drop=True)


def _score_locally(
    plan: ScoringPlan,
    package: ModelPackage,
    batches: list[pd.DataFrame],
    out: Path,
    progress: bool,
) -> None:
    scorer = ListScorer(plan, package)
    unit = "playlist" if plan.task == "next-song" else "user"
    total = sum(len(batch) for batch in batches)
    with (
        pq.ParquetWriter(out / LOCAL_FILE, TABLE_SCHEMA) as writer,
        tqdm(total=total, desc=f"batch {plan.task}", unit=unit, disable=not progress) as bar,
    ):
        for batch in batches:
            writer.write_table(scorer(batch))
            bar.update(len(batch))


def _score_on_ray(
    plan: ScoringPlan,
    batches: list[pd.DataFrame],
    out: Path,
    settings: Settings,
    progress: bool,
) -> None:
    import ray
    import ray.data

    started_here = not ray.is_initialized()
    if started_here:
        # An existing cluster (RAY_ADDRESS) has its own dashboard; a local one needs none.
        ray.init(**({} if os.environ.get("RAY_ADDRESS") else {"include_dashboard": False}))
    try:
        ray.data.DataContext.get_current().enable_progress_bars = progress
        cpus = settings.batch.ray_actor_cpus
        # One block per batch, and batches of the block size: every actor call scores exactly
        # the batch the local engine scores, so both write the same lists.
        dataset = ray.data.from_pandas(batches)
        lists = dataset.map_batches(
            RayListScorer,
            fn_constructor_args=(plan,),
            batch_size=settings.batch.batch_size,
            batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(size=settings.batch.ray_actors),
            num_cpus=cpus,
        )
        lists.write_parquet(str(out), ray_remote_args={"num_cpus": min(cpus, 1.0)})
    finally:
        if started_here:
            ray.shutdown()
