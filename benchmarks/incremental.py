"""The incremental lineage, side by side in one run: a full main job on a fresh instance, the same command
again on the up-to-date instance, and again after one API spec was edited, each as the user runs it
(`agentscaler run`, a new process: imports included), with its seconds and the count of asset
materialisations it made.

The catalog is a copy of the bundled one (so the edit never touches the package); the edit prepends a
sentence to one tool's description in `--edit` (a domain's spec file). `--profile smoke` (default) runs the
whole lineage in about two minutes on 2 cores; `--profile local` is the default-size run (about an hour).

    .venv/bin/python benchmarks/incremental.py [--profile smoke] [--edit library.json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from envgen.catalog.loaders import bundled_catalog_dir

SUMMARY = re.compile(r"main job (\w+) in \d+s: (\d+) asset materialisations in (\d+) runs, (\d+) up to date")
REPO = Path(__file__).resolve().parents[1]


def agentscaler_run(work: Path, profile: str, config: Path, log: Path) -> dict:
    """One `agentscaler run` in its own process against `work`'s instance; its wall time and summary."""
    env = {**os.environ, "DAGSTER_HOME": str(work / "dagster_home"), "AGENTSCALER_HOME": str(work / "store")}
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "agentscaler_assets.cli",
            "run",
            "--profile",
            profile,
            "--config",
            str(config),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    log.write_text(proc.stdout + proc.stderr)
    found = SUMMARY.search(proc.stdout)
    if proc.returncode or not found:
        raise SystemExit(f"agentscaler run failed ({proc.returncode}); its output is in {log}")
    ran = sorted(
        {line.split()[1] for line in proc.stdout.splitlines() if re.match(r"\s+domain\s+\S+\s+run\b", line)}
    )
    return {
        "seconds": round(seconds, 1),
        "materialised": int(found.group(2)),
        "runs": int(found.group(3)),
        "up_to_date": int(found.group(4)),
        "domains_run": ran,
    }


def edit_spec(path: Path) -> str:
    """Prepend a sentence to the first tool's description; the tool's name."""
    doc = json.loads(path.read_text())
    tool = doc["tools"][0]
    tool["description"] = "Edited for the benchmark. " + tool["description"]
    path.write_text(json.dumps(doc, indent=1))
    return tool["name"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="smoke", help="agentscaler run --profile (smoke | local | ...)")
    parser.add_argument("--edit", default="library.json", help="the bundled spec file to edit")
    parser.add_argument(
        "--keep", type=Path, help="work in this folder and keep it (default: a temporary one)"
    )
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="incremental-"))
    work.mkdir(parents=True, exist_ok=True)
    specs = work / "specs"
    shutil.rmtree(specs, ignore_errors=True)
    shutil.copytree(bundled_catalog_dir(), specs)
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({"ops": {"api_catalog": {"config": {"sources": [str(specs)]}}}}))

    rows = {"full run (fresh instance)": agentscaler_run(work, args.profile, config, work / "full.log")}
    rows["rerun, nothing changed"] = agentscaler_run(work, args.profile, config, work / "rerun.log")
    tool = edit_spec(specs / args.edit)
    rows[f"rerun after editing {args.edit} ({tool})"] = agentscaler_run(
        work, args.profile, config, work / "edit.log"
    )

    full = rows["full run (fresh instance)"]["seconds"]
    print(f"profile {args.profile}; logs in {work}\n")
    print("| run | seconds | × full | assets materialised | runs | up to date, skipped | domains run |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, r in rows.items():
        ran = r["domains_run"]
        domains = ", ".join(ran) if len(ran) <= 4 else f"all {len(ran)}" if ran else "none"
        print(
            f"| {name} | {r['seconds']} | {r['seconds'] / full:.3f} | {r['materialised']} | {r['runs']} "
            f"| {r['up_to_date']} | {domains} |"
        )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
