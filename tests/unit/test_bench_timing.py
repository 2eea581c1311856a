"""common.bench.timing: interleaved rounds and failure reporting (the bench's method; no time is asserted)."""

import torch

from common.bench.timing import StepTimes, time_interleaved


def test_rounds_alternate_the_optimizers_and_a_failure_is_reported_not_fatal():
    calls: list[str] = []

    def stepper(name: str, fail_at: int | None = None):
        count = 0

        def step() -> None:
            nonlocal count
            count += 1
            if fail_at is not None and count == fail_at:
                raise RuntimeError("boom\nsecond line")
            calls.append(name)
        return step

    out = time_interleaved([stepper("a"), stepper("b"), stepper("c", fail_at=3)], torch.device("cpu"),
                           warmup=1, steps=4, rounds=2)
    assert calls[:3] == ["a", "b", "c"]  # warm-up, each once
    assert calls[3:] == ["a", "a", "b", "b", "c", "a", "a", "b", "b"]  # c fails on its 2nd timed step, then drops
    assert isinstance(out[0], StepTimes) and out[0].steps == 4 and out[1].steps == 4
    assert out[2] == "failed: RuntimeError: boom"


def test_more_rounds_than_steps_still_times_every_step():
    out = time_interleaved([lambda: None], torch.device("cpu"), warmup=0, steps=3, rounds=10)
    assert isinstance(out[0], StepTimes) and out[0].steps == 3 and out[0].min_ms <= out[0].median_ms
