"""Song matching: precision and recall on the labelled set, false matches, time per song at scale.

Run: ``nice -n 10 .venv/bin/python benchmarks/matching.py [--sizes 10000,50000,200000]``
(``--quality-only`` skips the timings).

1. Quality, on ``tests/fixtures/matching/labelled.jsonl`` (written by
   ``python -m segue.sample.matching_cases``; see that module for the kinds of cases) and its
   catalogue: per kind, how many cases were matched to the right song, to a wrong one, or left
   unmatched, and by which stage; then precision (right matches / all matches made), recall
   (right matches / positives) and the false-match rate (negatives matched to anything, goal
   under 1%) at several fuzzy thresholds, the configured one marked.
2. Speed, on catalogues of every song of a synthetic world of each size: index build time and
   time per song for songs found by their parsed key, misspelt songs (fuzzy stage) and made-up
   songs (fuzzy stage, unmatched), with recall and false matches at that size; and, for
   comparison, the fuzzy match this index replaced (``WRatio`` over every label) on a few songs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz, process, utils

from segue.sample.matching_cases import (
    MatchingCase,
    labelled_catalogue,
    read_cases,
    world_catalogue,
)
from segue.serving.matching import SongMatcher
from segue.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
LABELLED = REPO / "tests" / "fixtures" / "matching" / "labelled.jsonl"
PARSER_TESTS = REPO / "tests" / "data" / "test_song_parser.py"
THRESHOLDS = (70.0, 75.0, 80.0, 82.0, 83.0, 85.0, 88.0, 90.0, 95.0)
TIMED_SONGS = 300
OLD_SCORER_SONGS = 20
OLD_THRESHOLD = 85.0


def _outcomes(matcher: SongMatcher, cases: list[MatchingCase]) -> list[tuple[str, str]]:
    """(outcome, stage) per case: right, wrong, missed (positives); rejected, false (negatives)."""
    keys = matcher.keys
    results = []
    for case in cases:
        item, stage = matcher.match_with_stage(case.text)
        if case.expected is None:
            results.append(("false" if item is not None else "rejected", stage))
        elif item is None:
            results.append(("missed", stage))
        else:
            results.append(("right" if keys[item] == case.expected else "wrong", stage))
    return results


def _summary(outcomes: list[tuple[str, str]]) -> tuple[float, float, float, Counter]:
    counts = Counter(outcome for outcome, _ in outcomes)
    made = counts["right"] + counts["wrong"] + counts["false"]
    positives = counts["right"] + counts["wrong"] + counts["missed"]
    negatives = counts["false"] + counts["rejected"]
    precision = counts["right"] / made if made else 1.0
    recall = counts["right"] / positives if positives else 0.0
    false_rate = counts["false"] / negatives if negatives else 0.0
    return precision, recall, false_rate, counts


def quality(threshold: float) -> None:
    catalogue = labelled_catalogue(PARSER_TESTS)
    cases = read_cases(LABELLED)
    matcher = SongMatcher(catalogue.items, catalogue.aliases, threshold)
    outcomes = _outcomes(matcher, cases)
    print(
        f"labelled set: {len(cases)} cases "
        f"({sum(c.expected is not None for c in cases)} positives, "
        f"{sum(c.expected is None for c in cases)} negatives), "
        f"catalogue of {len(catalogue.items):,} songs; fuzzy_threshold {threshold:g}\n"
    )
    by_kind: dict[tuple[bool, str], list[tuple[str, str]]] = defaultdict(list)
    for case, outcome in zip(cases, outcomes):
        by_kind[(case.expected is None, case.kind)].append(outcome)
    print("| kind | cases | right | wrong | missed | false match | by key/parsed/fuzzy |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for (negative, kind), rows in sorted(by_kind.items()):
        counts = Counter(outcome for outcome, _ in rows)
        stages = Counter(stage for outcome, stage in rows if outcome in ("right", "wrong", "false"))
        label = f"{kind} ({'negative' if negative else 'positive'})"
        print(
            f"| {label} | {len(rows)} | {counts['right']} | {counts['wrong']} | "
            f"{counts['missed']} | {counts['false']} | "
            f"{stages['key']}/{stages['parsed']}/{stages['fuzzy']} |"
        )
    print(
        "\n| fuzzy_threshold | precision | recall | false-match rate (negatives) | false / negatives |"
    )
    print("| ---: | ---: | ---: | ---: | ---: |")
    for value in sorted({*THRESHOLDS, threshold}):
        matcher.fuzzy_threshold = value
        precision, recall, false_rate, counts = _summary(_outcomes(matcher, cases))
        mark = " (configured)" if value == threshold else ""
        print(
            f"| {value:g}{mark} | {precision:.4f} | {recall:.4f} | {false_rate:.2%} | "
            f"{counts['false']} / {counts['false'] + counts['rejected']} |"
        )


def _made_up(rng: np.random.Generator, titles: list[str], count: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    songs = []
    for _ in range(count):
        code = "".join(rng.choice(list(letters), size=2)).title() + str(rng.integers(100, 1000))
        title = titles[int(rng.integers(len(titles)))]
        songs.append(f"{code} Summer - {title if rng.random() < 0.5 else 'Golden City Night'}")
    return songs


def _misspelt(rng: np.random.Generator, artists: list[str], titles: list[str]) -> list[str]:
    songs = []
    while len(songs) < TIMED_SONGS:
        song = int(rng.integers(len(titles)))
        title = titles[song]
        letters = [i for i, c in enumerate(title) if c.isascii() and c.isalpha()]
        if len(letters) < 8:
            continue
        at = letters[int(rng.integers(len(letters)))]
        songs.append((f"{artists[song]} - {title[:at]}{title[at + 1 :]}", song))
    return songs


def _per_song_ms(matcher: SongMatcher, texts: list[str]) -> tuple[np.ndarray, list]:
    times, found = [], []
    for text in texts:
        start = time.perf_counter()
        found.append(matcher.match(text))
        times.append((time.perf_counter() - start) * 1000.0)
    return np.array(times), found


def speed(sizes: list[int], threshold: float) -> None:
    print(
        "\n| songs | index build s | parsed key ms/song (mean, p99) | misspelt ms/song "
        "(mean, p99) | misspelt recall | made-up ms/song (mean, p99) | made-up false matches "
        f"| before: WRatio over all labels ms/song, false matches ({OLD_SCORER_SONGS} made-up) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in sizes:
        items, aliases, songs = world_catalogue(size, seed=size)
        start = time.perf_counter()
        matcher = SongMatcher(items, aliases, threshold)
        build = time.perf_counter() - start
        rng = np.random.default_rng(size + 1)
        artists, titles = songs["artist"].tolist(), songs["title"].tolist()
        picked = rng.choice(size, size=TIMED_SONGS, replace=False).tolist()
        exact_ms, _ = _per_song_ms(matcher, [f"{artists[i]} - {titles[i]} [MV]" for i in picked])
        misspelt = _misspelt(rng, artists, titles)
        typo_ms, typo_found = _per_song_ms(matcher, [text for text, _ in misspelt])
        recall = np.mean([found == song for found, (_, song) in zip(typo_found, misspelt)])
        made_up = _made_up(rng, titles, TIMED_SONGS)
        made_ms, made_found = _per_song_ms(matcher, made_up)
        false = sum(found is not None for found in made_found)
        labels = [
            utils.default_process(f"{a} - {t}") for a, t in zip(items["artist"], items["title"])
        ]
        start = time.perf_counter()
        old_false = sum(
            process.extractOne(
                utils.default_process(text),
                labels,
                scorer=fuzz.WRatio,
                processor=None,
                score_cutoff=OLD_THRESHOLD,
            )
            is not None
            for text in made_up[:OLD_SCORER_SONGS]
        )
        old_ms = (time.perf_counter() - start) * 1000.0 / OLD_SCORER_SONGS

        def shown(values: np.ndarray) -> str:
            return f"{values.mean():.3f}, {np.percentile(values, 99):.3f}"

        print(
            f"| {size:,} | {build:.2f} | {shown(exact_ms)} | {shown(typo_ms)} | {recall:.3f} | "
            f"{shown(made_ms)} | {false} / {TIMED_SONGS} | {old_ms:.1f}, "
            f"{old_false} / {OLD_SCORER_SONGS} |",
            flush=True,
        )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000,200000")
    parser.add_argument("--quality-only", action="store_true")
    args = parser.parse_args(argv)
    threshold = load_settings().serving.fuzzy_threshold
    quality(threshold)
    if not args.quality_only:
        speed([int(size) for size in args.sizes.split(",")], threshold)


if __name__ == "__main__":
    main(sys.argv[1:])
