"""What `make bench` says of the machine while each benchmark ran (benchmarks/__main__.py).

On a virtual machine the host can take our cores for other guests ("steal"); a run measured
under heavy steal is slower for reasons outside the code, and the results must say so.
"""

from benchmarks.__main__ import cpu_shares, cpu_times


def test_the_shares_of_busy_idle_and_stolen_time_come_from_the_ticks_spent_during_the_run():
    # user nice system idle iowait irq softirq steal guest guest_nice
    before = [1000, 10, 200, 5000, 50, 0, 40, 100, 0, 0]
    after = [1600, 10, 300, 5200, 100, 0, 90, 300, 0, 0]  # 600+100+50 busy, 200+50 idle, 200 stolen
    assert cpu_shares(before, after) == {"busy": 0.625, "idle": 0.208, "steal": 0.167}


def test_a_machine_without_proc_stat_gives_no_shares_rather_than_made_up_ones():
    assert cpu_shares([], [1, 2, 3, 4, 5, 6, 7, 8]) == {}
    assert cpu_shares([1, 2, 3, 4, 5, 6, 7, 8], []) == {}


def test_this_machine_reports_its_ticks():
    ticks = cpu_times()
    assert len(ticks) >= 8 and all(value >= 0 for value in ticks)
