"""The formatting helpers and the histogram arithmetic: pure functions, no app."""

from __future__ import annotations

import pytest

from indexer.snapshot import Alert, Percentiles
from tui import format as fmt
from tui.panes.latency import bin_counts, nice_ticks, percentiles_of


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0"), (12_345, "12,345"), (1_234_567, "1.23M"), (12_345_678, "12.3M")],
)
def test_counts_get_thousands_separators_then_millions(n: int, text: str) -> None:
    assert fmt.count(n) == text


@pytest.mark.parametrize(
    ("x", "text"),
    [(0, "0"), (0.42, "0.42"), (8.5, "8.5"), (10.0, "10"), (13.25, "13.2"), (812.4, "812")],
)
def test_small_numbers_keep_at_most_three_significant_digits(x: float, text: str) -> None:
    assert fmt.number(x) == text


@pytest.mark.parametrize(("x", "text"), [(1_234, "1.2k"), (12_650, "13k"), (3_400_000, "3.4M")])
def test_large_numbers_are_shortened_with_k_and_m(x: float, text: str) -> None:
    assert fmt.number(x) == text


def test_file_counts_are_pluralised() -> None:
    assert fmt.files(1) == "1 file"
    assert fmt.files(12_345) == "12,345 files"


def test_compact_keeps_small_counts_exact() -> None:
    assert fmt.compact(9_999) == "9999"
    assert fmt.compact(12_650) == "13k"


def test_rates_latencies_and_percentiles_carry_their_units() -> None:
    assert fmt.per_second(412.5) == "412/s"
    assert fmt.ms(None) == "—"
    assert fmt.ms(0.4) == "0.4 ms"
    assert fmt.ms(1_240) == "1.2 s"
    assert fmt.percentiles(Percentiles(12, 40.5, 61)) == "12 / 40.5 / 61 ms"
    assert fmt.percentiles(Percentiles()) == "—"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "—"), (-1, "0.0s"), (3.44, "3.4s"), (12.2, "12s"), (185, "3m05s"), (7_440, "2h04m")],
)
def test_durations_read_in_seconds_minutes_or_hours(seconds: float | None, text: str) -> None:
    assert fmt.duration(seconds) == text


def test_ago_is_relative_to_the_snapshot_time() -> None:
    assert fmt.ago(None, 100.0) == "never"
    assert fmt.ago(99.5, 100.0) == "just now"
    assert fmt.ago(88.0, 100.0) == "12s ago"
    assert fmt.ago(0.0, 185.0) == "3m05s ago"
    assert fmt.ago(200.0, 100.0) == "just now"  # a clock skew never shows a negative age


def test_since_counts_whole_seconds_up_to_minutes() -> None:
    assert fmt.since(99.5, 100.0) == "now"
    assert fmt.since(94.1, 100.0) == "6s"  # whole seconds, like `ago` in the header
    assert fmt.since(88.0, 100.0) == "12s"
    assert fmt.since(0.0, 185.0) == "3m05s"


def test_a_ratio_reads_as_a_multiplier_or_a_dash() -> None:
    assert fmt.ratio(None) == "—"
    assert fmt.ratio(4.2777) == "×4.28"


def test_fit_path_keeps_the_kind_folder_and_both_ends_of_the_file_name() -> None:
    path = "part/msg_c11f57eb6001zjdZqveZle3ppa/prt_c11f58908001mP9IZpL5YXBvxi.json"
    assert fmt.fit_path(path, 200) == path
    assert fmt.fit_path(path, 44) == "part/…/prt_c11f58908001mP9IZpL5YXBvxi.json"
    short = fmt.fit_path(path, 24)
    assert short == "part/…/prt_c11f…L5YXBvxi"
    assert fmt.fit_path(path, 3) == "par"
    assert fmt.fit_path(path, 0) == ""


def test_fit_path_keeps_a_source_rows_record_and_both_ends_of_its_id() -> None:
    key = "sqlite:opencode.db:session_message/msg_b770773200026UHZxE2SdLjrtL_21"
    assert fmt.fit_path(key, 60) == "sqlite:opencode.db:session_message/msg_b7707732…E2SdLjrtL_21"
    assert fmt.fit_path(key, 45) == "sqlite:…:session_message/msg_b77077…dLjrtL_21"
    assert fmt.fit_path(key, 40) == "session_message/msg_b7707732…2SdLjrtL_21"
    assert fmt.fit_path(key, 33) == "session_message/msg_b770…LjrtL_21"
    for width in range(1, 80):
        assert len(fmt.fit_path(key, width)) <= width


def test_fit_marks_a_cut_and_one_line_keeps_only_the_first_line() -> None:
    assert fmt.fit("invalid_json", 20) == "invalid_json"
    assert fmt.fit("wrong_top_level", 12) == "wrong_top_l…"
    assert fmt.one_line("  first\nsecond  ") == "first"
    assert fmt.one_line("   ") == ""


def test_alert_line_names_figure_value_threshold_and_the_key() -> None:
    line = fmt.alert_line(Alert("p95 latency", 412.0, 250.0, "v2 slowed down\nmore"))
    assert line == (
        "p95 latency 412 ms is over its 250 ms threshold: v2 slowed down — press b to roll back"
    )
    rate = fmt.alert_line(Alert("error rate", 0.052, 0.01, ""))
    assert rate == "error rate 5.2% is over its 1.0% threshold — press b to roll back"


def test_percentiles_of_uses_nearest_rank() -> None:
    assert percentiles_of([]) == Percentiles()
    samples = [float(i) for i in range(1, 101)]
    assert percentiles_of(samples) == Percentiles(50.0, 95.0, 99.0)
    assert percentiles_of([7.0]) == Percentiles(7.0, 7.0, 7.0)


def test_bin_counts_cover_every_sample() -> None:
    centers, counts = bin_counts([0.0, 1.0, 9.9, 10.0, 50.0], top=10.0, bins=5)
    assert centers == [1.0, 3.0, 5.0, 7.0, 9.0]
    assert counts == [2, 0, 0, 0, 3]  # values at or past the top land in the last bin


def test_nice_ticks_are_round() -> None:
    assert nice_ticks(160.0, 4) == [0, 50, 100, 150]
    assert nice_ticks(84.0, 8) == [0, 20, 40, 60, 80]
    assert nice_ticks(84.0, 9) == [0, 10, 20, 30, 40, 50, 60, 70, 80]
    assert nice_ticks(0.9, 3) == pytest.approx([0.0, 0.5])
