"""The scoring queue: lists scored together equal lists scored alone, one bad request or a hot
reload in the middle of a batch changes nobody else's answer, and a slow request stalls no other."""

from __future__ import annotations

import asyncio
import threading

import httpx
import numpy as np
import pytest

from segue.serving import batching
from segue.serving.app import create_app
from segue.serving.batching import ScoringQueue, _Turns
from segue.serving.recommender import ListRules, ModelVersion, ServingModel

from .support import PackageLoader, next_song_package, settings_with, user_items_package

VERSION = ModelVersion("dev.segue-user-items", "1")


@pytest.fixture(scope="module")
def model() -> ServingModel:
    return ServingModel("user-items", VERSION, user_items_package(), 85.0)


def spy_on_batches(model: ServingModel) -> list[int]:
    """The size of every batch ``model`` scores from now on."""
    sizes: list[int] = []
    original = model.recommend_many

    def recommend_many(requests):
        sizes.append(len(requests))
        return original(requests)

    model.recommend_many = recommend_many  # type: ignore[method-assign]
    return sizes


def in_one_batch(model: ServingModel, jobs, prepare_slice_seconds: float = 60.0) -> list:
    """Queue every job while the only worker is busy with another, so they form one batch
    (answered in one slice unless preparing takes ``prepare_slice_seconds``)."""
    queue = ScoringQueue("test", threads=1, prepare_slice_seconds=prepare_slice_seconds)
    entered, release = threading.Event(), threading.Event()

    def hold():
        entered.set()
        release.wait(30)
        return model.user_request("1", 1, ListRules())

    async def run():
        holder = asyncio.ensure_future(queue.recommend(model, hold))
        await asyncio.to_thread(entered.wait, 30)
        tasks = [asyncio.ensure_future(queue.recommend(m, prepare)) for m, prepare in jobs]
        await asyncio.sleep(0)  # every job is queued before the worker is free
        release.set()
        await holder
        return await asyncio.gather(*tasks, return_exceptions=True)

    queue.start()
    try:
        return asyncio.run(run())
    finally:
        queue.stop()


def test_a_batch_gives_the_lists_each_request_gets_alone(model: ServingModel) -> None:
    users = list(model.package.user_histories)[:6]
    alone = [
        model.recommend(model.user_request(user, 1 + n, ListRules()))
        for n, user in enumerate(users)
    ]
    histories = [["1", "2"], ["3"], ["999999"]]
    alone += [model.recommend(model.history_request(keys, 4, ListRules())) for keys in histories]
    batched_model = ServingModel("user-items", VERSION, model.package, 85.0)
    sizes = spy_on_batches(batched_model)
    jobs = [
        (batched_model, lambda m=batched_model, u=user, k=1 + n: m.user_request(u, k, ListRules()))
        for n, user in enumerate(users)
    ] + [
        (batched_model, lambda m=batched_model, h=keys: m.history_request(h, 4, ListRules()))
        for keys in histories
    ]
    together = in_one_batch(batched_model, jobs)
    assert sizes == [1, len(jobs)]  # the holding request, then all the others together
    assert together == alone
    assert together[-1].unmatched == ["999999"]


def test_a_batch_answers_its_first_requests_before_preparing_the_rest(
    model: ServingModel,
) -> None:
    """With slices of no time, each request is scored before the next is matched: the second
    request's preparation waits for the first one's scoring, which never comes if the batch is
    held until every request is prepared."""
    served = ServingModel("user-items", VERSION, model.package, 85.0)
    sizes = spy_on_batches(served)
    first_scored = threading.Event()
    spied = served.recommend_many

    def recommend_many(requests):
        lists = spied(requests)
        if len(sizes) == 2:  # the holding request's call, then the first request's
            first_scored.set()
        return lists

    served.recommend_many = recommend_many  # type: ignore[method-assign]

    def after_the_first():
        assert first_scored.wait(30), "the first request was not scored first"
        return served.user_request("2", 3, ListRules())

    jobs = [(served, lambda: served.user_request("1", 3, ListRules())), (served, after_the_first)]
    first, second = in_one_batch(served, jobs, prepare_slice_seconds=0.0)
    assert sizes == [1, 1, 1]  # the holding request, then each request in its own slice
    assert first == served.recommend(served.user_request("1", 3, ListRules()))
    assert second == served.recommend(served.user_request("2", 3, ListRules()))


def test_worker_threads_take_turns_in_the_order_they_asked() -> None:
    """A thread that leaves the turn and asks again waits behind the one already waiting, and a
    batch that runs too long lets the next beside it."""
    turns = _Turns(stall_seconds=60.0)
    order: list[str] = []
    waiting = threading.Event()
    turns.enter()  # the first thread's batch runs

    def second() -> None:
        waiting.set()
        turns.enter()
        order.append("second")
        turns.leave()

    thread = threading.Thread(target=second)
    thread.start()
    assert waiting.wait(10)
    while not turns._waiting:  # until the second thread queued for its turn
        threading.Event().wait(0.001)
    turns.leave()
    turns.enter()  # asks again at once: the second thread goes first
    order.append("first again")
    turns.leave()
    thread.join(10)
    assert order == ["second", "first again"]

    stuck = _Turns(stall_seconds=0.0)
    stuck.enter()
    stuck.progress()  # a batch begins and never answers
    beside = threading.Thread(target=stuck.enter)
    beside.start()
    beside.join(10)
    assert not beside.is_alive()  # ran beside the stuck batch


def test_the_thread_that_finished_a_batch_serves_the_next_unless_another_runs_beside() -> None:
    turns = _Turns(stall_seconds=0.0)
    turns.enter()
    assert turns.keep()  # alone: keeps the turn, waiting for a request, so not stalled
    assert not turns.stalled()
    turns.progress()  # a batch begins and, with no stall time allowed, stalls at once
    beside = threading.Thread(target=turns.enter)
    beside.start()
    beside.join(10)
    assert not beside.is_alive()
    assert not turns.keep()  # another thread runs beside: this one must leave


def test_consecutive_batches_are_served_by_one_thread(model: ServingModel) -> None:
    # Handing the turn to the idle thread after every batch would cost a thread switch each.
    queue = ScoringQueue("test", threads=2)
    served = ServingModel("user-items", VERSION, model.package, 85.0)
    threads: list[str] = []

    def prepare():
        threads.append(threading.current_thread().name)
        return served.user_request("1", 2, ListRules())

    async def run():
        for _ in range(6):
            await queue.recommend(served, prepare)

    queue.start()
    try:
        asyncio.run(run())
    finally:
        queue.stop()
    assert len(threads) == 6 and len(set(threads)) == 1


def test_a_batch_that_keeps_answering_slices_is_not_stalled(monkeypatch) -> None:
    # A long batch answering a slice at a time needs no second thread beside it (the two would
    # only trade the GIL); one that answers nothing for stall_seconds does.
    clock = [100.0]
    monkeypatch.setattr(batching.time, "perf_counter", lambda: clock[0])
    turns = _Turns(stall_seconds=1.0)
    turns.enter()
    clock[0] = 150.0
    assert not turns.stalled()  # the thread with the turn waits for a request: no batch yet
    clock[0] = 100.0
    turns.progress()  # a batch begins
    clock[0] = 100.9
    turns.progress()  # a slice answered
    clock[0] = 101.5  # 1.5 s into the batch, 0.6 s since its last slice
    assert not turns.stalled()
    clock[0] = 102.0
    assert turns.stalled()


def test_requests_arriving_during_a_batch_are_served_next_in_the_order_they_came(
    model: ServingModel, monkeypatch
) -> None:
    """With two worker threads, the idle one takes no request while a batch runs (one it held
    would wait behind requests that came after it): they all form the next batch, in order."""
    monkeypatch.setattr(batching, "STALL_SECONDS", 60.0)
    queue = ScoringQueue("test", threads=2)
    served = ServingModel("user-items", VERSION, model.package, 85.0)
    sizes = spy_on_batches(served)
    prepared: list[int] = []
    entered, release = threading.Event(), threading.Event()

    def job(number: int):
        def prepare():
            prepared.append(number)
            if number == 0:
                entered.set()
                release.wait(30)
            return served.user_request("1", 2, ListRules())

        return prepare

    async def run():
        holder = asyncio.ensure_future(queue.recommend(served, job(0)))
        await asyncio.to_thread(entered.wait, 30)
        tasks = [asyncio.ensure_future(queue.recommend(served, job(n))) for n in range(1, 6)]
        await asyncio.sleep(0)  # every request is queued before the batch ends
        while not queue._turns._waiting:  # until the other thread waits for its turn
            threading.Event().wait(0.001)
        assert queue._jobs.qsize() == 5  # ... holding none of them
        release.set()
        await holder
        await asyncio.gather(*tasks)

    queue.start()
    try:
        asyncio.run(run())
    finally:
        queue.stop()
    assert prepared == [0, 1, 2, 3, 4, 5]
    assert sizes == [1, 5]


def test_a_request_that_fails_to_prepare_fails_alone(model: ServingModel) -> None:
    served = ServingModel("user-items", VERSION, model.package, 85.0)

    def broken():
        raise ValueError("cannot match this request")

    jobs = [
        (served, lambda: served.user_request("1", 3, ListRules())),
        (served, broken),
        (served, lambda: served.user_request("2", 3, ListRules())),
    ]
    first, failed, last = in_one_batch(served, jobs)
    assert isinstance(failed, ValueError)
    assert first == served.recommend(served.user_request("1", 3, ListRules()))
    assert last == served.recommend(served.user_request("2", 3, ListRules()))


def test_each_request_is_scored_by_the_model_it_was_queued_with(model: ServingModel) -> None:
    """A hot reload between two requests of one batch: each keeps its own version."""
    old = ServingModel("next-song", ModelVersion("n", "1"), next_song_package("item-knn"), 85.0)
    new = ServingModel("next-song", ModelVersion("n", "2"), next_song_package("markov"), 85.0)
    playlist = ["iu|palette", "bts|butter"]
    jobs = [
        (old, lambda: old.next_songs_request(playlist, 5, ListRules())),
        (new, lambda: new.next_songs_request(playlist, 5, ListRules())),
    ]
    from_old, from_new = in_one_batch(old, jobs)
    assert from_old == old.recommend(old.next_songs_request(playlist, 5, ListRules()))
    assert from_new == new.recommend(new.next_songs_request(playlist, 5, ListRules()))
    assert [e.score for e in from_old.items] != [e.score for e in from_new.items]


def test_a_stopped_queue_refuses_work_and_a_started_one_answers(model: ServingModel) -> None:
    queue = ScoringQueue("test", threads=2)
    with pytest.raises(RuntimeError, match="not running"):
        asyncio.run(queue.recommend(model, lambda: model.user_request("1", 3, ListRules())))
    queue.start()
    try:
        result = asyncio.run(
            queue.recommend(model, lambda: model.history_request(["1"], 3, ListRules()))
        )
    finally:
        queue.stop()
    assert len(result.items) == 3
    assert all(not thread.is_alive() for thread in queue._threads)
    assert np.isfinite([entry.score for entry in result.items]).all()


@pytest.mark.slow
def test_a_slow_request_does_not_stall_the_others(serve, packages) -> None:
    armed, entered, release = threading.Event(), threading.Event(), threading.Event()
    gated = next_song_package("most-popular")
    original = gated.scorer._score

    def slow_score(histories):
        if armed.is_set() and not entered.is_set():  # only the first request is slow
            entered.set()
            release.wait(timeout=60)
        return original(histories)

    gated.scorer._score = slow_score
    url = serve(create_app(settings_with(), PackageLoader({**packages, "next-song": gated})))
    armed.set()
    slow: list[int] = []
    waiting = threading.Thread(
        target=lambda: slow.append(
            httpx.post(
                f"{url}/v1/next-songs", json={"songs": ["iu|palette"]}, timeout=60
            ).status_code
        )
    )
    waiting.start()
    try:
        assert entered.wait(timeout=30)
        # The next-song request is stuck inside its scorer; everything else still answers,
        # other next-song requests included.
        assert httpx.get(f"{url}/v1/users/1/recommendations", timeout=10).status_code == 200
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        other = httpx.post(f"{url}/v1/next-songs", json={"songs": ["BTS - Butter"]}, timeout=10)
        assert other.status_code == 200
        assert not slow
    finally:
        release.set()
        waiting.join(timeout=30)
    assert slow == [200]
