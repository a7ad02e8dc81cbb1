"""The ops artefacts: alert rules, Prometheus config and Grafana dashboard agree with the catalogue.

promtool comes from the Debian package ``prometheus``. Its tests skip locally without it and fail
when ``CI`` is set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from metrics import catalog

METRICS_DIR = Path(catalog.__file__).resolve().parent
ALERTS = METRICS_DIR / "prometheus" / "alerts.yml"
PROMETHEUS_CONFIG = METRICS_DIR / "prometheus" / "prometheus.yml"
DASHBOARD = METRICS_DIR / "grafana" / "printsync.json"

METRIC_NAME = re.compile(r"\bprintsync_[a-zA-Z0-9_]+")
# Grafana's variables, replaced by values PromQL accepts.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$tenant": ".*",
}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is not None:
        return path
    message = "promtool is missing (Debian package 'prometheus')"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must install it")
    pytest.skip(message)


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=60, check=False
    )


def load_alerts() -> dict[str, Any]:
    data = yaml.safe_load(ALERTS.read_text())
    assert isinstance(data, dict)
    return data


def alert_rules() -> Iterator[dict[str, Any]]:
    for group in load_alerts()["groups"]:
        yield from group["rules"]


def load_dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


def dashboard_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_expressions() -> list[str]:
    dashboard = load_dashboard()
    expressions = [
        target["expr"]
        for panel in dashboard_panels(dashboard)
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            expressions.append(variable["definition"])
    return expressions


def names_in(texts: list[str]) -> set[str]:
    return {name for text in texts for name in METRIC_NAME.findall(text)}


def test_check_rules_alerts_file_passes() -> None:
    result = run_promtool("check", "rules", str(ALERTS))

    assert result.returncode == 0, result.stdout + result.stderr


def test_check_config_prometheus_file_passes() -> None:
    result = run_promtool("check", "config", str(PROMETHEUS_CONFIG))

    assert result.returncode == 0, result.stdout + result.stderr


def test_check_rules_dashboard_expressions_parse(tmp_path: Path) -> None:
    rules = []
    for index, expression in enumerate(dashboard_expressions()):
        if expression.startswith("label_values("):
            continue
        for variable, replacement in GRAFANA_VARIABLES.items():
            expression = expression.replace(variable, replacement)
        assert "$" not in expression, expression
        rules.append({"record": f"dashboard:expression_{index}", "expr": expression})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = run_promtool("check", "rules", str(path))

    assert result.returncode == 0, result.stdout + result.stderr


def series(name: str, **labels: str) -> str:
    """A promtool input series selector, e.g. ``name{a="b"}``."""
    return name + "{" + ",".join(f'{key}="{value}"' for key, value in labels.items()) + "}"


def sampled(selector: str, values: str) -> dict[str, str]:
    """An input series: ``selector`` taking ``values`` (promtool's expanding notation)."""
    return {"series": selector, "values": values}


def silent(alertname: str, at: str) -> dict[str, Any]:
    """``alertname`` is not firing at ``at``."""
    return {"eval_time": at, "alertname": alertname, "exp_alerts": []}


def fires(alertname: str, at: str, **labels: str) -> dict[str, Any]:
    """``alertname`` fires once at ``at``, with ``labels``."""
    return {"eval_time": at, "alertname": alertname, "exp_alerts": [{"exp_labels": labels}]}


def rule_test(inputs: list[dict[str, str]], alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """One promtool rule test: ``inputs`` sampled every minute, and the ``alerts`` expected."""
    return {"interval": "1m", "input_series": inputs, "alert_rule_test": alerts}


def scim_answers(ok: str, failed: str) -> list[dict[str, str]]:
    """User reads answered 200 taking the values ``ok``, user creates answered 500 ``failed``."""
    requests = "printsync_scim_requests_total"
    return [
        sampled(series(requests, resource="Users", method="GET", status="200"), ok),
        sampled(series(requests, resource="Users", method="POST", status="500"), failed),
    ]


def acme_stopped(timestamp: str, minutes: int) -> list[dict[str, str]]:
    """The ``timestamp`` gauge of acme stuck at 0 (nothing happened since), while beta's keeps
    up with the clock, for ``minutes``."""
    return [
        sampled(series(timestamp, tenant="acme"), f"0x{minutes}"),
        sampled(series(timestamp, tenant="beta"), f"0+60x{minutes}"),
    ]


def effects(kind: str, outcome: str, values: str) -> dict[str, str]:
    """Effects of ``kind`` on PaperCut ending in ``outcome``, taking ``values``."""
    selector = series("printsync_effects_total", kind=kind, connector="papercut", outcome=outcome)
    return sampled(selector, values)


RULE_TESTS: list[dict[str, Any]] = [
    rule_test(
        [sampled(series("printsync_outbox_oldest_pending_age_seconds", job="worker"), "0+60x15")],
        [
            silent("PrintsyncOutboxStalled", "5m"),
            fires("PrintsyncOutboxStalled", "10m", severity="critical"),
        ],
    ),
    rule_test(
        scim_answers(ok="0+100x30", failed="0+2x30"),
        [fires("PrintsyncScim5xxRatioHigh", "25m", severity="critical")],
    ),
    rule_test(
        scim_answers(ok="0+1000x30", failed="0+1x30"),
        [silent("PrintsyncScim5xxRatioHigh", "25m")],
    ),
    rule_test(
        acme_stopped("printsync_tenant_last_success_timestamp_seconds", 200),
        [
            silent("PrintsyncTenantNoRecentSync", "110m"),
            fires("PrintsyncTenantNoRecentSync", "130m", severity="critical", tenant="acme"),
        ],
    ),
    rule_test(
        [
            sampled(series("printsync_tenant_health", tenant="acme", state="healthy"), "0x180"),
            sampled(series("printsync_tenant_health", tenant="acme", state="failing"), "1x180"),
            sampled(series("printsync_tenant_health", tenant="beta", state="healthy"), "1x180"),
            sampled(
                series("printsync_tenant_last_success_timestamp_seconds", tenant="beta"),
                "0+60x180",
            ),
        ],
        [
            fires("PrintsyncTenantFailing", "20m", severity="critical", tenant="acme"),
            fires("PrintsyncTenantNeverSynced", "150m", severity="warning", tenant="acme"),
        ],
    ),
    rule_test(
        [
            sampled(
                series("printsync_effects_dead", job="worker", kind="print-account:revoke"),
                "0x60 1x90",
            )
        ],
        [
            fires(
                "PrintsyncDeadEffectsIncreasing",
                "70m",
                severity="critical",
                kind="print-account:revoke",
            ),
            silent("PrintsyncDeadEffectsIncreasing", "140m"),
            fires(
                "PrintsyncDeadEffectsPresent",
                "80m",
                severity="warning",
                kind="print-account:revoke",
            ),
        ],
    ),
    rule_test(
        [
            effects("print-account:ensure", "succeeded", "0+10x60"),
            effects("print-account:ensure", "retried", "0+2x60"),
            effects("print-account:revoke", "succeeded", "0+10x60"),
        ],
        [
            fires(
                "PrintsyncEffectFailureRatioHigh",
                "45m",
                severity="warning",
                kind="print-account:ensure",
                connector="papercut",
            )
        ],
    ),
    rule_test(
        [
            # acme's last cycle ended at 0 and none followed; beta's cycles keep coming.
            *acme_stopped("printsync_cycle_last_request_timestamp_seconds", 200),
            sampled(series("printsync_effects_held", tenant="acme"), "0x10 12x20"),
            sampled(series("printsync_effects_held", tenant="beta"), "0x30"),
        ],
        [
            silent("PrintsyncTenantCyclesStopped", "110m"),
            fires("PrintsyncTenantCyclesStopped", "130m", severity="warning", tenant="acme"),
            silent("PrintsyncDeprovisioningHeld", "5m"),
            fires("PrintsyncDeprovisioningHeld", "20m", severity="warning", tenant="acme"),
        ],
    ),
]


def test_test_rules_synthetic_series_fire_expected_alerts(tmp_path: Path) -> None:
    # promtool compares annotations too; the test checks expressions, durations and labels.
    rules = load_alerts()
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    rules_path = tmp_path / "alerts.yml"
    rules_path.write_text(yaml.safe_dump(rules))
    tests_path = tmp_path / "alerts_test.yml"
    tests_path.write_text(
        yaml.safe_dump(
            {"rule_files": [str(rules_path)], "evaluation_interval": "1m", "tests": RULE_TESTS}
        )
    )

    result = run_promtool("test", "rules", str(tests_path))

    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_metric_names_exist_in_catalog() -> None:
    texts = []
    for rule in alert_rules():
        texts.append(rule["expr"])
        texts.extend(rule.get("annotations", {}).values())

    unknown = names_in(texts) - catalog.sample_names()

    assert not unknown, f"alert rules use metrics missing from the catalogue: {sorted(unknown)}"


def test_dashboard_metric_names_exist_in_catalog() -> None:
    unknown = names_in(dashboard_expressions()) - catalog.sample_names()

    assert not unknown, f"dashboard uses metrics missing from the catalogue: {sorted(unknown)}"


def test_dashboard_catalog_metrics_all_shown() -> None:
    used = names_in(dashboard_expressions())

    missing = [spec.name for spec in catalog.CATALOG if not spec.sample_names & used]

    assert not missing, f"metrics without a dashboard panel: {missing}"


def test_alert_rules_required_alerts_present() -> None:
    names = {rule["alert"] for rule in alert_rules()}

    assert {
        "PrintsyncEffectFailureRatioHigh",
        "PrintsyncOutboxStalled",
        "PrintsyncDeadEffectsPresent",
        "PrintsyncDeadEffectsIncreasing",
        "PrintsyncScim5xxRatioHigh",
        "PrintsyncTenantNoRecentSync",
        "PrintsyncTenantFailing",
        "PrintsyncTenantCyclesStopped",
        "PrintsyncDeprovisioningHeld",
    } <= names
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_load_dashboard_valid_json_has_panels_with_queries() -> None:
    dashboard = load_dashboard()

    panels = [p for p in dashboard_panels(dashboard) if p["type"] != "row"]
    assert len(panels) >= 10
    ids = [p["id"] for p in dashboard_panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["title"], panel
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}, panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert METRIC_NAME.search(target["expr"]), panel["title"]
    assert dashboard["uid"]


def test_prometheus_config_scrapes_api_and_worker_with_rules() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())

    assert {job["job_name"] for job in config["scrape_configs"]} == {"api", "worker"}
    assert config["rule_files"] == [ALERTS.name]


# The catalogue itself --------------------------------------------------------------------------


def test_catalog_names_unique_and_prefixed() -> None:
    names = [spec.name for spec in catalog.CATALOG]

    assert len(names) == len(set(names))
    assert all(name.startswith("printsync_") for name in names)


def test_catalog_live_gauges_have_multiprocess_mode() -> None:
    gauges = [s for s in catalog.CATALOG if s.kind == "gauge" and not s.scrape_time]

    assert gauges
    assert all(spec.multiprocess_mode for spec in gauges)
    assert catalog.BUILD_INFO._multiprocess_mode == "livemax"


def test_metric_spec_per_person_label_raises() -> None:
    with pytest.raises(ValueError, match="per-person"):
        catalog.MetricSpec("printsync_x_total", "x", "counter", ("tenant", "userName"))


def test_metric_spec_live_gauge_without_mode_raises() -> None:
    with pytest.raises(ValueError, match="multiprocess_mode"):
        catalog.MetricSpec("printsync_x", "x", "gauge", ("tenant",))


def test_sample_names_histogram_and_counter_include_suffixes() -> None:
    names = catalog.sample_names()

    assert {
        "printsync_scim_request_duration_seconds_bucket",
        "printsync_scim_request_duration_seconds_count",
        "printsync_scim_request_duration_seconds_sum",
        "printsync_scim_requests_total",
        "printsync_outbox_pending",
    } <= names
    assert "printsync_outbox_pending_total" not in names
