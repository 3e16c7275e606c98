"""Run every benchmark: `python -m bench.all` (results also land in bench/results/*.json)."""

from __future__ import annotations

from bench import (
    batch_inference,
    cold_start,
    distributed,
    incremental,
    model_formats,
    orchestration_overhead,
    scale,
    serving_latency,
    sweep,
    threads,
    training_throughput,
    under_load,
    validation_cost,
)


def main() -> None:
    orchestration_overhead.main([])
    validation_cost.main([])
    training_throughput.main([])
    for ratio in ("bench.orchestration_overhead", "bench.validation_cost", "bench.training_throughput"):
        under_load.main([ratio])  # the same ratios with a background CPU load
    serving_latency.main([])
    model_formats.main([])
    threads.main([])
    distributed.main([])
    cold_start.main([])
    incremental.main([])
    scale.main([])
    batch_inference.main([])
    sweep.main([])


if __name__ == "__main__":
    main()
