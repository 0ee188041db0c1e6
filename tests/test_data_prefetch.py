"""Work ahead on threads (Prefetch, prefetch_map) and the streaming loop on top of it (SegmentStream), with fake work:
order, per-item errors, bounds, a failing item list, a failing computation, and a clean stop."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from audioclf.audio import FeatureExtractor
from audioclf.config import ModelConfig
from audioclf.data.prefetch import Finished, ItemsError, Part, Prefetch, prefetch_map
from audioclf.data.segments import Segmenter
from audioclf.data.sources import SourceItem
from audioclf.engine.stream import SegmentStream
from audioclf.errors import AudioclfError

AUDIO = Path(__file__).parent / "data" / "audio"


def slow_square(value: int) -> int:
    time.sleep(random.random() * 0.01)
    if value == 7:
        raise ValueError("seven")
    return value * value


def test_prefetch_map_keeps_input_order_and_reports_errors_per_item() -> None:
    results = list(prefetch_map(range(30), slow_square, workers=4))
    assert [item for item, _, _ in results] == list(range(30))
    assert [value for item, value, _ in results if item != 7] == [k * k for k in range(30) if k != 7]
    item, value, error = results[7]
    assert value is None and isinstance(error, ValueError) and str(error) == "seven"


def test_parts_arrive_in_order_per_item_and_finished_comes_last() -> None:
    def produce(item: int):
        for part in range(item % 4):
            time.sleep(random.random() * 0.002)
            yield (item, part)

    seen: dict[int, list] = {}
    finished = []
    with Prefetch(range(40), produce, workers=3, capacity=5) as work:
        for message in work:
            if isinstance(message, Part):
                assert message.index not in finished
                seen.setdefault(message.index, []).append(message.value)
            else:
                assert isinstance(message, Finished) and message.error is None and message.item == message.index
                finished.append(message.index)
    assert sorted(finished) == list(range(40))
    assert all(seen.get(k, []) == [(k, p) for p in range(k % 4)] for k in range(40))


def test_items_that_fail_to_iterate_end_the_run() -> None:
    def items():
        yield 1
        raise OSError("the path list is gone")

    with pytest.raises(ItemsError) as error:
        list(prefetch_map(items(), slow_square, workers=2))
    assert isinstance(error.value.cause, OSError)


def test_ahead_and_capacity_bound_the_work_in_flight() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def produce(item: int):
        with lock:
            started.append(item)
        yield item

    with Prefetch(range(100), produce, workers=4, capacity=3, ahead=5) as work:
        consumed = 0
        while consumed < 100:
            message = work.get(1.0)
            assert message is not None
            if isinstance(message, Finished):
                time.sleep(0.001)
                with lock:
                    assert max(started) < consumed + 5  # never more than `ahead` items beyond the oldest unfinished
                work.done(message.index)
                consumed += 1
        assert work.get(1.0) is None and work.finished


def test_closing_early_stops_every_worker() -> None:
    before = threading.active_count()

    def produce(item: int):
        while True:  # endless output: only the stop can end it
            yield item

    work = Prefetch(range(10), produce, workers=3, capacity=2)
    stream = iter(work)
    next(stream)
    stream.close()
    assert threading.active_count() == before


def segment_stream(compute, batch_size: int = 2) -> SegmentStream:
    config = ModelConfig(model_type="wav2vec2", conv_kernel=[10, 3], conv_stride=[5, 2], conv_dim=[8, 8])
    segmenter = Segmenter.for_model(config, FeatureExtractor(), window=0.25)
    return SegmentStream(segmenter, compute, batch_size=batch_size, max_batch_samples=10**6, pad=False, workers=2)


def test_stream_keeps_input_order_and_fails_only_the_batch_the_computation_fails_on() -> None:
    rng = np.random.default_rng(0)
    lengths = [16000, 4000, 8000, 4000, 12000, 10]  # windows of 4000 samples; the last input is too short (< 20)

    def compute(segments):
        if any(segment.start_frame == 8000 for segment in segments):
            raise MemoryError("out of memory")
        return [float(segment.features.mean()) for segment in segments]

    items = [SourceItem(index=k, samples=rng.standard_normal(n), sampling_rate=16000) for k, n in enumerate(lengths)]
    items.insert(3, SourceItem("missing.wav"))
    results = list(segment_stream(compute, batch_size=1)(items))
    assert [r.item for r in results] == items
    failed = "model failed: MemoryError: out of memory"  # the inputs with a window starting at 8000
    assert [r.error for r in results[:6]] == [failed, None, None, "no such file", None, failed]
    assert results[6].error.startswith("too short") and results[0].parts == []
    assert [(s.start_frame, s.frames) for s, _ in results[1].parts] == [(0, 4000)]
    for result in results:
        for segment, value in result.parts:
            assert value == pytest.approx(float(segment.features.mean()))


def test_stream_reports_an_unreadable_item_list() -> None:
    def items():
        yield SourceItem(str(AUDIO / "speechcommands_yes_1000ms_16k_mono.wav"))
        raise OSError("stdin went away")

    with pytest.raises(AudioclfError, match="cannot read the list of inputs: stdin went away"):
        list(segment_stream(lambda segments: [0.0] * len(segments))(items()))
