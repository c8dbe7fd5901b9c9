"""Ingestion speed and memory: song parsing rate and a 1,000,000-entry playlist ingest.

Run:  nice -n 10 .venv/bin/python benchmarks/ingest.py [--playlists 50000 --songs 60000]

Measures, on generated data written to a temporary directory:

1. distinct song strings parsed per second by ``parse_songs`` on one core (goal >= 50,000);
2. wall time and peak RSS of ``ingest_playlists`` in a fresh child process (goal < 30 s and
   < 2 GB for 1,000,000 entries), on two corpora:
   - "synthetic": ``segue.sample.synth.generate_playlists`` as it comes; its running timestamps and
     track numbers make most written strings unique, as in real YouTube tracklists;
   - "repeated": the same songs drawn with their popularity, each written in one of at most four
     variants taken from the synthetic corpus, so the same strings recur often.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from segue.sample.synth import generate_playlists, write_playlists

_CHILD = """
import json, resource, sys, time
from segue.data.ingest import ingest_playlists
from segue.settings import DataSettings
start = time.perf_counter()
result = ingest_playlists([sys.argv[1]], sys.argv[2], DataSettings(), progress=False)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "counts": result.dataset.manifest["counts"]}))
"""


def repeated_variants(
    records: list[dict], truth: object, n_playlists: int, length: int, seed: int, variants: int
) -> list[dict]:
    """Playlists drawn by song popularity, each song written as one of its first few variants."""
    pool: dict[int, list[str]] = {}
    for record, song_ids in zip(records, truth.song_ids, strict=True):  # type: ignore[attr-defined]
        for text, song in zip(record.get("songs") or [], song_ids.tolist(), strict=False):
            if song >= 0 and isinstance(text, str):
                forms = pool.setdefault(song, [])
                if len(forms) < variants and text not in forms:
                    forms.append(text)
    songs = np.array(sorted(pool))
    weights = truth.songs["popularity"].to_numpy()[songs]  # type: ignore[attr-defined]
    rng = np.random.default_rng(seed)
    drawn = rng.choice(songs, size=(n_playlists, length), p=weights / weights.sum())
    picks = rng.integers(0, variants, size=drawn.shape)
    return [
        {
            "video_id": f"r{number}",
            "songs": [
                pool[s][p % len(pool[s])] for s, p in zip(row.tolist(), pick.tolist(), strict=True)
            ],
        }
        for number, (row, pick) in enumerate(zip(drawn, picks, strict=True))
    ]


def distinct_strings(records: list[dict]) -> list[str]:
    seen = dict.fromkeys(
        song for record in records for song in record.get("songs") or [] if isinstance(song, str)
    )
    return list(seen)


def parse_rate(strings: list[str], sample: int) -> tuple[int, float]:
    """Distinct strings parsed per second in this process (one core)."""
    from segue.data.song_parser import parse_songs

    chosen = strings[:sample]
    start = time.perf_counter()
    parse_songs(chosen)
    return len(chosen), len(chosen) / (time.perf_counter() - start)


def ingest_in_child(path: Path, out: Path) -> dict:
    """Run one ingest in a fresh interpreter, which reports its own time and peak RSS."""
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--playlists", type=int, default=50_000)
    parser.add_argument("--songs", type=int, default=60_000, help="distinct songs in the world")
    parser.add_argument("--length", type=int, default=20, help="mean playlist length")
    parser.add_argument("--variants", type=int, default=4, help="written forms per song (repeated)")
    parser.add_argument("--parse-sample", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="segue-bench-ingest-") as workdir:
        root = Path(workdir)
        start = time.perf_counter()
        records, truth = generate_playlists(
            arguments.playlists, arguments.songs, arguments.seed,
            mean_length=arguments.length, with_truth=True,
        )  # fmt: skip
        repeated = repeated_variants(
            records,
            truth,
            arguments.playlists,
            arguments.length,
            arguments.seed,
            arguments.variants,
        )
        corpora = {"synthetic": records, "repeated": repeated}
        print(f"generated both corpora in {time.perf_counter() - start:.1f} s", file=sys.stderr)

        strings = distinct_strings(records)
        parsed, rate = parse_rate(strings, arguments.parse_sample)
        print(f"parse_songs: {parsed:,} distinct strings, {rate:,.0f} per second (goal >= 50,000)")

        for name, corpus in corpora.items():
            path = write_playlists(corpus, root / f"{name}.json")
            entries = sum(len(r.get("songs") or []) for r in corpus)
            distinct = len(distinct_strings(corpus))
            report = ingest_in_child(path, root / f"{name}-out")
            rows.append((name, len(corpus), entries, distinct, report))
            print(f"ingested {name}", file=sys.stderr)

    header = (
        "corpus",
        "playlists",
        "entries",
        "distinct strings",
        "kept items",
        "seconds",
        "peak RSS MB",
    )
    print()
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for name, playlists, entries, distinct, report in rows:
        cells = (
            name,
            f"{playlists:,}",
            f"{entries:,}",
            f"{distinct:,}",
            f"{report['counts']['kept']['items']:,}",
            f"{report['seconds']:.1f}",
            f"{report['peak_rss_mb']:,.0f}",
        )
        print(" | ".join(cells))
    print("\ngoals: ingest 1,000,000 entries in < 30 s with peak RSS < 2,048 MB")


if __name__ == "__main__":
    main()
