"""deploy/prometheus: the scrape config and rules pass promtool's checks and their unit tests.

promtool comes with Debian's ``prometheus`` package (``make prometheus``); the promtool tests
skip where it is missing. The coverage tests read the YAML only and always run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RECORDING_RULES = PROMETHEUS_DIR / "recording_rules.yml"
ALERT_RULES = PROMETHEUS_DIR / "alert_rules.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed (`make prometheus` or apt-get install prometheus)")
    return path


def run_promtool(promtool: str, *args: str | Path) -> str:
    result = subprocess.run(
        [promtool, *map(str, args)],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool {' '.join(map(str, args))} failed:\n{output}"
    return output


def rules(path: Path) -> list[dict]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def rule_tests() -> list[dict]:
    return [test for path in RULE_TESTS for test in yaml.safe_load(path.read_text())["tests"]]


def test_config_scrapes_segue_and_loads_both_rule_files():
    config = yaml.safe_load(CONFIG.read_text())
    assert config["rule_files"] == [RECORDING_RULES.name, ALERT_RULES.name]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "segue"
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": ["127.0.0.1:8000"]}]


def test_every_alert_has_a_firing_and_a_silent_case():
    cases: dict[str, set[bool]] = {}
    for test in rule_tests():
        for case in test.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    for rule in rules(ALERT_RULES):
        name = rule["alert"]
        assert cases.get(name) == {True, False}, f"{name} needs a firing and a silent test case"
        assert "for" in rule, f"{name} has no for: duration"
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert {"summary", "description"} <= rule["annotations"].keys()


def test_every_recording_rule_has_an_expression_test():
    tested = {case["expr"] for test in rule_tests() for case in test.get("promql_expr_test", [])}
    for rule in rules(RECORDING_RULES):
        assert rule["record"] in tested, f"{rule['record']} has no promql_expr_test"


def test_config_is_valid(promtool):
    output = run_promtool(promtool, "check", "config", CONFIG.name)
    assert "SUCCESS" in output


def test_rules_are_valid(promtool):
    output = run_promtool(promtool, "check", "rules", RECORDING_RULES.name, ALERT_RULES.name)
    assert f"SUCCESS: {len(rules(RECORDING_RULES))} rules found" in output
    assert f"SUCCESS: {len(rules(ALERT_RULES))} rules found" in output


@pytest.mark.parametrize("rule_test", RULE_TESTS, ids=lambda path: path.name)
def test_rule_unit_tests_pass(promtool, rule_test):
    output = run_promtool(promtool, "test", "rules", rule_test.relative_to(PROMETHEUS_DIR))
    assert "SUCCESS" in output
