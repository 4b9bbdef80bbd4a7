"""Smoke runs of benchmarks/run.py and fista_step_size.py: they run and print
their tables (no timings checked)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sporco")
pytest.importorskip("skimage")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
HEADER = "| section | skdeconv | anchor | ratio | target | pass? |"


def run_script(*arguments, script=SCRIPT):
    return subprocess.run(
        [sys.executable, str(script), *arguments],
        capture_output=True, text=True, timeout=300,
    )


# The default tier smoke-runs the sections that take seconds in --quick mode;
# section 10 (large data sets: 100 generated images, the online fit, SPORCO's
# online learner and a dask cluster) takes minutes even then: slow tier.
FAST_SECTIONS = "inference,auto,learning,sklearn,floor,float32,jobs,memory"


def test_quick_run_prints_and_writes_the_table(tmp_path):
    output = tmp_path / "results.md"
    completed = run_script("--quick", "--only", FAST_SECTIONS, "--output", str(output))
    assert completed.returncode == 0, completed.stderr
    assert HEADER in completed.stdout
    table = output.read_text()
    assert f"\n{HEADER}\n" in table
    for section in range(1, 8):  # section 8 (scaling) is skipped in --quick mode
        assert f"\n| {section}. " in table, f"section {section} missing from\n{table}"


def test_unknown_section_is_rejected():
    completed = run_script("--quick", "--only", "inference,nonsense")
    assert completed.returncode == 2
    assert "nonsense" in completed.stderr


@pytest.mark.slow
def test_quick_run_of_the_large_data_section(tmp_path):
    output = tmp_path / "results.md"
    completed = run_script("--quick", "--only", "large", "--output", str(output))
    assert completed.returncode == 0, completed.stderr
    assert "\n| 10. " in output.read_text()


def test_quick_run_of_fista_step_size():
    completed = run_script("--quick", script=SCRIPT.with_name("fista_step_size.py"))
    assert completed.returncode == 0, completed.stderr
    rows = [line.split(" | ") for line in completed.stdout.splitlines()]
    assert [row[0] for row in rows[2:]] == [
        "| camera, lambda 1", "| top layer, 150 maps over 45 channels"
    ]
    assert all(len(row) == 7 for row in rows[2:]), completed.stdout
