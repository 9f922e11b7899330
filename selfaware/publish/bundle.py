"""A static `inspect view` site of a log folder, built from a scrubbed copy of the logs.

Inspect's bundler copies logs as they are; secrets in them (a key in a model argument, a token in an error
message) would be published with the site. So the logs are first copied with every JSON value scrubbed
(`selfaware.redact.scrub_deep`: `.eval` archives member by member, `.json` logs whole), and the bundle is
made from that copy. The originals are never changed.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path

from selfaware.redact import scrub_deep

LOG_SUFFIXES = (".eval", ".json")


def _scrubbed_json(data: bytes, where: str) -> bytes:
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{where}: not JSON, cannot be scrubbed before publishing ({e})") from None
    return json.dumps(scrub_deep(value), ensure_ascii=False).encode("utf-8")


def scrub_eval_archive(source: Path, target: Path) -> None:
    """Copy a `.eval` archive with every JSON member's values scrubbed (other members copied as they are)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".json"):
                data = _scrubbed_json(data, f"{source}:{info.filename}")
            dst.writestr(info, data)


def scrubbed_copy(log_dir: Path, target: Path) -> list[Path]:
    """Every log under `log_dir` copied to the same relative place under `target`, scrubbed."""
    written = []
    for path in sorted(p for p in log_dir.rglob("*") if p.is_file() and p.suffix in LOG_SUFFIXES):
        out = target / path.relative_to(log_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".eval":
            try:
                scrub_eval_archive(path, out)
            except zipfile.BadZipFile:  # a cut download: not a log (publish lists it as not published)
                continue
        elif path.name.startswith(("logs", "listing")) or path.parent.name.startswith("."):
            continue  # Inspect's own listings are rebuilt by the bundler
        else:
            out.write_bytes(_scrubbed_json(path.read_bytes(), str(path)))
        written.append(out)
    return written


def bundle_viewer(log_dir: Path, output_dir: Path, *, overwrite: bool = False) -> Path:
    """`inspect view bundle` of the scrubbed logs into `output_dir` (open its index.html, or serve it)."""
    from inspect_ai.log import bundle_log_dir

    if output_dir.exists() and not overwrite:
        raise FileExistsError(f"{output_dir}: already exists (use --overwrite to replace it)")
    with tempfile.TemporaryDirectory(prefix="selfaware-bundle-") as tmp:
        copies = scrubbed_copy(log_dir, Path(tmp) / "logs")
        if not copies:
            raise FileNotFoundError(f"{log_dir}: no .eval or .json logs to bundle")
        if output_dir.exists():
            shutil.rmtree(output_dir)
        bundle_log_dir(log_dir=str(Path(tmp) / "logs"), output_dir=str(output_dir), overwrite=True)
    return output_dir
