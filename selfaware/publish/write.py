"""`selfaware publish LOGS`: Every Eval Ever files (validated, scrubbed) and a static viewer of the logs.

Layout of `OUT/every_eval_ever/` follows the Every Eval Ever datastore: `data/<task>/<developer>/<model>/
<uuid>.json` (aggregate) beside `<uuid>_samples.jsonl` (instances), the aggregate pointing at its instances
with their row count and sha256 checksum. Records are scrubbed of secrets, then validated; a record that
fails its schema stops the run with the JSON path of every bad field, before anything of it is written.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfaware.publish.eee import jsonl, log_to_eee
from selfaware.publish.schemas import EEESchemas, check
from selfaware.redact import scrub_deep

# The schema version written when records are not validated (no schema folder to read it from).
DEFAULT_SCHEMA_VERSION = "0.3.0"


@dataclass
class PublishReport:
    aggregates: list[Path] = field(default_factory=list)
    instance_files: list[Path] = field(default_factory=list)
    instances: int = 0
    skipped: list[str] = field(default_factory=list)  # logs not published, with the reason
    omitted: list[str] = field(default_factory=list)  # results without a number (all answers invalid)


def publish_eee(log_dir: Path, out: Path, *, schemas: EEESchemas | None, source: dict[str, Any],
                retrieved: str | None = None) -> PublishReport:
    """Write the EEE records of every successful log under `log_dir` to `out`; validate them when `schemas`
    is given. Logs that did not finish successfully are listed in `report.skipped`."""
    from inspect_ai.log import list_eval_logs, read_eval_log

    retrieved = retrieved or str(int(time.time()))
    version = schemas.version if schemas else DEFAULT_SCHEMA_VERSION
    report = PublishReport()
    infos = list_eval_logs(str(log_dir), recursive=True)
    if not infos:
        raise FileNotFoundError(f"{log_dir}: no Inspect logs found")
    for info in infos:
        try:
            log = read_eval_log(info)
        except Exception as e:  # noqa: BLE001 (a cut or foreign file is listed like an unfinished log)
            report.skipped.append(f"{Path(info.name).name}: not a readable Inspect log ({e})")
            continue
        name = Path(str(log.location)).name
        if log.status != "success" or log.results is None:
            report.skipped.append(f"{name}: status {log.status}")
            continue
        pub = log_to_eee(log, schema_version=version, retrieved=retrieved, source=source)
        aggregate = scrub_deep(pub.aggregate)
        instances = [scrub_deep(r) for r in pub.instances]
        body = jsonl(instances)
        aggregate["detailed_evaluation_results"]["checksum"] = hashlib.sha256(body.encode("utf-8")).hexdigest()
        if schemas is not None:
            check(schemas.aggregate, aggregate, f"{name} -> {pub.aggregate_path}")
            for i, row in enumerate(instances):
                check(schemas.instance, row, f"{name} -> {pub.samples_path} row {i + 1}")
        target = out / pub.aggregate_path
        if target in report.aggregates:  # never overwrite one log's records with another's
            raise ValueError(f"{name}: its records would replace those of another log at {target}")
        target.parent.mkdir(parents=True, exist_ok=True)
        (out / pub.samples_path).write_text(body, encoding="utf-8")
        target.write_text(json.dumps(aggregate, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n",
                          encoding="utf-8")
        report.aggregates.append(target)
        report.instance_files.append(out / pub.samples_path)
        report.instances += len(instances)
        report.omitted += [f"{name}: {o}" for o in pub.omitted]
    return report
