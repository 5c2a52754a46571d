"""`make bench`: run every benchmark, print a table, write benchmarks/results/latest.json.

Each benchmark module has `run() -> dict` of flat figures. Timings on a shared machine are
noisy, so the headline figures are ratios measured in the same run.
Run a subset with `python -m benchmarks sky send`.
"""

import importlib
import json
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
TABLE_VALUE_WIDTH = 240
# dispatch last: its million rows leave PostgreSQL busy
BENCHMARKS = ("sky", "prepare", "reading", "send", "rate", "portal", "dispatch")


def machine_info() -> dict:
    cpu_model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory_gib = 0.0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kib = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        memory_gib = round(total_kib / 1024 / 1024, 1)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": memory_gib,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def cpu_times() -> list[int]:
    """The machine's CPU time so far by kind (/proc/stat's first line), in clock ticks; [] elsewhere."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return []
    return [int(value) for value in stat.read_text().split("\n", 1)[0].split()[1:]]


def cpu_shares(before: list[int], after: list[int]) -> dict:
    """How the machine's CPU time went while a benchmark ran: busy, idle, and stolen by the host.

    On a virtual machine the hypervisor can run other guests on our cores ("steal"): every
    timing of the run is slower by that much, whatever the code does, so the table shows it.
    """
    if not before or not after:
        return {}
    spent = [b - a for a, b in zip(before, after, strict=False)]
    # user, nice, system, idle, iowait, irq, softirq, steal (guest time is inside user already)
    total = sum(spent[:8]) or 1
    return {
        "busy": round(sum(spent[0:3] + spent[5:7]) / total, 3),
        "idle": round((spent[3] + spent[4]) / total, 3),
        "steal": round(spent[7] / total, 3) if len(spent) > 7 else 0.0,
    }


def print_table(results: dict) -> None:
    print()
    print(f"{'benchmark':<10} {'figure':<44} value")
    print("-" * 72)
    for name, figures in results.items():
        for key, value in figures.items():
            shown = json.dumps(value) if isinstance(value, dict | list) else value
            if isinstance(shown, str) and len(shown) > TABLE_VALUE_WIDTH:  # query plans: the file has them whole
                shown = shown[: TABLE_VALUE_WIDTH - 30] + f"... ({len(shown):,} chars, see {RESULTS.name})"
            print(f"{name:<10} {key:<44} {shown}")
    print()


def main(selected: list[str]) -> int:
    names = selected or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results: dict = dict(previous.get("benchmarks", {}))
    failed = []
    for name in names:
        print(f"== {name}", flush=True)
        began, cpu_before = time.perf_counter(), cpu_times()
        try:
            module = importlib.import_module(f"benchmarks.bench_{name}")
            results[name] = module.run()
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        results[name]["wall_s"] = round(time.perf_counter() - began, 1)
        results[name]["machine_cpu_share"] = cpu_shares(cpu_before, cpu_times())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": machine_info(),
                "benchmarks": results,
            },
            indent=2,
        )
        + "\n"
    )
    print_table({name: results[name] for name in names if name in results})
    print(f"written to {RESULTS}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
