"""Song-string parsing speed on distinct, realistic tracklist lines (ingestion needs >= 50k/s).

Run: ``nice -n 10 .venv/bin/python benchmarks/song_parsing_speed.py [n_strings] [repeats]``.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable

from segue.data import song_parser as songs
from segue.data import song_text

ARTISTS = [
    "아이유 (IU)",
    "IU",
    "JANNABI(잔나비)",
    "BTS (방탄소년단)",
    "Simon & Garfunkel",
    "Coldplay",
    "BLACKPINK",
    "Red Velvet (레드벨벳)",
    "AKMU (악뮤)",
    "Taylor Swift",
    "The Weeknd",
    "Queen",
    "Zion.T",
    "10CM",
    "Dua Lipa",
    "NewJeans (뉴진스)",
    "Beyoncé",
    "Anne-Marie",
    "JAY-Z",
    "YOASOBI",
]
WORDS = [
    "love",
    "night",
    "밤편지",
    "사랑",
    "summer",
    "rain",
    "blue",
    "days",
    "하루",
    "moon",
    "letter",
    "dream",
    "별",
    "city",
    "light",
    "고백",
    "you",
    "forever",
    "road",
    "바람",
    "heart",
    "time",
]
PREFIXES = [
    "",
    "",
    "",
    "00:{m:02d} ",
    "{h}:{m:02d}:{s:02d} ",
    "[{m:02d}:{s:02d}] ",
    "{n}. ",
    "{n:02d}) ",
    "#{n} ",
]
SEPARATORS = [" - ", " - ", " – ", " — ", " | ", " ｜ ", " － ", " / "]
SUFFIXES = [
    "",
    "",
    "",
    " (Official Video)",
    " [MV]",
    " (Lyrics)",
    " (Audio)",
    " [4K]",
    " (Official Music Video)",
    " [M/V]",
    " (Live)",
    " 【MV】",
    " (feat. {feat})",
    " (Remix)",
    " (Acoustic Ver.)",
    " ✨",
    " | 가사",
]


SYLLABLES_LATIN = ["ka", "ri", "mo", "jin", "sol", "lee", "park", "won", "dae", "min", "ho", "na"]
SYLLABLES_HANGUL = ["카", "리", "모", "진", "솔", "이", "박", "원", "대", "민", "호", "나"]


def synthetic_artists(count: int, rng: random.Random) -> list[str]:
    """Real-looking names plus generated ones; about a third carry a bracketed alias."""
    names = list(ARTISTS)
    while len(names) < count:
        picks = rng.choices(range(len(SYLLABLES_LATIN)), k=rng.randint(2, 3))
        latin = "".join(SYLLABLES_LATIN[i] for i in picks).title()
        hangul = "".join(SYLLABLES_HANGUL[i] for i in picks)
        form = rng.random()
        names.append(
            f"{hangul} ({latin})"
            if form < 0.2
            else f"{latin}({hangul})"
            if form < 0.35
            else hangul
            if form < 0.6
            else latin
        )
    return names


def realistic_strings(count: int, seed: int = 0) -> list[str]:
    """``count`` distinct song lines built from common tracklist patterns."""
    rng = random.Random(seed)
    artists = synthetic_artists(max(20, count // 10), rng)
    lines: set[str] = set()
    while len(lines) < count:
        title = " ".join(rng.choices(WORDS, k=rng.randint(1, 4)))
        title += f" {rng.randint(1, 999)}" if rng.random() < 0.5 else ""
        prefix = rng.choice(PREFIXES).format(
            h=rng.randint(1, 3), m=rng.randint(0, 59), s=rng.randint(0, 59), n=rng.randint(1, 99)
        )
        suffix = rng.choice(SUFFIXES).format(feat=rng.choice(artists))
        lines.add(f"{prefix}{rng.choice(artists)}{rng.choice(SEPARATORS)}{title.title()}{suffix}")
    return sorted(lines, key=lambda _: rng.random())


def clear_caches() -> None:
    cached_steps = (
        songs._analyse,
        song_text.read_artist_side,
        song_text.read_title_side,
        song_text._classify,
    )
    for cached in cached_steps:
        cached.cache_clear()


def timed(action: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Best wall and CPU seconds over ``repeats`` runs, caches cleared before each run."""
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        clear_caches()
        wall, cpu = time.perf_counter(), time.process_time()
        action()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    lines = realistic_strings(count)
    results, table = songs.parse_songs(lines)
    errors = sum(isinstance(r, songs.SongParseError) for r in results)
    keys = len({r.key for r in results if isinstance(r, songs.ParsedSong)})
    rows = [
        ("parse_songs", *timed(lambda: songs.parse_songs(lines), repeats)),
        ("parse_song per line", *timed(lambda: [songs.parse_song(x) for x in lines], repeats)),
    ]
    print(f"{count} distinct strings, {errors} errors, {keys} distinct keys, {len(table)} aliases")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"best of {repeats}, caches cleared; CPU time excludes waiting for a shared core")
    print(f"load average while running: {load} on {os.cpu_count()} cores")
    print(f"{'method':22} {'wall s':>7} {'cpu s':>7} {'strings/wall s':>15} {'strings/cpu s':>14}")
    for name, wall_seconds, cpu_seconds in rows:
        print(
            f"{name:22} {wall_seconds:7.2f} {cpu_seconds:7.2f} "
            f"{count / wall_seconds:15,.0f} {count / cpu_seconds:14,.0f}"
        )


if __name__ == "__main__":
    main()
