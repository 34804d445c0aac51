"""The Dagster UI tells the story: a real `dagster-webserver` on a temporary instance in which the catalog
stage and one domain partition were materialised, looked at in headless Chromium.

It checks the rendered pages (not only the GraphQL behind them): the asset graph with its five groups,
the `domain` partitions (one materialised, the rest missing), metadata a person reads (the domains funnel
and size histogram, a domain's tables, a task preview, the trajectory funnel), the asset checks and the
schedules and sensors. Screenshots go to the test's tmp_path; with AGENTSCALER_UPDATE_SCREENSHOTS=1 they
also replace docs/screenshots/ (what people see), so an ordinary test run never edits tracked files.

Needs Debian's `chromium` and `chromium-driver` (/usr/bin/chromium, /usr/bin/chromedriver) and selenium
(the `dev` extra); skipped with the reason when they are missing. Selenium is pointed at the system
chromedriver, so it never downloads a driver.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dagster import AssetSelection, DagsterInstance, materialize

from agentscaler_assets.definitions import ALL_ASSETS, ALL_CHECKS
from agentscaler_assets.main_job import CATALOG_STAGE, DOMAIN_STAGE
from agentscaler_assets.resources import LanguageModels, StorageRoot, TrainingSettings

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = Path(os.environ.get("AGENTSCALER_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("AGENTSCALER_CHROMEDRIVER", "/usr/bin/chromedriver"))
WEBSERVER = Path(sys.executable).parent / "dagster-webserver"
SLUG = "airline"
SERVER_TIMEOUT = 240  # seconds for the webserver and its code server (imports torch) to come up
PAGE_TIMEOUT = 60  # seconds for one page to render what it should

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        f"headless Chromium is not installed ({CHROMIUM}, {CHROMEDRIVER} missing): "
        "apt-get install -y chromium chromium-driver",
        allow_module_level=True,
    )
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install -e .[dev])"
)
from selenium.webdriver.chrome.service import Service  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dagster_home(tmp_path_factory) -> Path:
    """A Dagster instance directory with the catalog stage and airline's domain stage (and its checks)
    materialised, and the asset files under its `agentscaler/` folder, as `agentscaler run` lays it out."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    resources = {
        "storage": StorageRoot(root=str(home / "agentscaler")),
        "llm": LanguageModels(),
        "training": TrainingSettings(),
    }
    with DagsterInstance.from_config(str(home)) as instance:
        assert materialize(
            ALL_ASSETS, selection=CATALOG_STAGE, instance=instance, resources=resources
        ).success
        assert materialize(
            [*ALL_ASSETS, *ALL_CHECKS],
            selection=AssetSelection.assets(*DOMAIN_STAGE),
            instance=instance,
            resources=resources,
            partition_key=SLUG,
            run_config={"ops": {"domain_tasks": {"config": {"n_chains": 12, "vertical_n_chains": 12}}}},
        ).success
    return home


def _graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _wait_until_loaded(url: str, proc: subprocess.Popen, log: Path) -> None:
    """Until the webserver answers and its code location is LOADED (GraphQL), or fail with its log."""
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    deadline = time.monotonic() + SERVER_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dagster-webserver exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            entries = _graphql(url, query)["data"]["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                return
        except (OSError, KeyError, TypeError, ValueError):
            pass
        time.sleep(1)
    pytest.fail(f"dagster-webserver not ready after {SERVER_TIMEOUT}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def webserver(dagster_home, tmp_path_factory) -> Iterator[str]:
    """`dagster-webserver` on a free 127.0.0.1 port against `dagster_home`; always stopped afterwards,
    its code server included (it runs in its own session, which teardown signals as a whole)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("webserver") / "webserver.log"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "AGENTSCALER_HOME": str(dagster_home / "agentscaler"),
        "AGENTSCALER_PROFILE": "local",
    }
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(WEBSERVER), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_loaded(url, proc, log)
        # The UI greets a new local instance with a "Join the Dagster community" dialog over every page;
        # mark it seen in the instance, as its Skip button does, so screenshots show the pages.
        assert _graphql(url, "mutation { setNuxSeen }")["data"]["setNuxSeen"] is not None
        yield url
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT first (the webserver's clean shutdown, which also stops its code server), then SIGKILL to
    whatever of its session is still running."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator["webdriver.Chrome"]:
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1600,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Callable[["webdriver.Chrome", str], Path]:
    """Save a screenshot under the test's output, and into docs/screenshots/ when asked to update them."""
    out = tmp_path_factory.mktemp("screenshots")
    update_docs = os.environ.get("AGENTSCALER_UPDATE_SCREENSHOTS") == "1"

    def save(driver: "webdriver.Chrome", name: str, publish: bool = True) -> Path:
        path = out / f"{name}.png"
        assert driver.save_screenshot(str(path)), f"could not save {path}"
        if publish and update_docs:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, SCREENSHOTS / path.name)
        return path

    return save


def _wait_for(driver: "webdriver.Chrome", expected: list[str], what: str, shots=None, name: str = "") -> str:
    """Poll the rendered text until it shows every expected string (the React app renders after load and
    fetches its data afterwards); return the text. On a timeout the failure names what is missing, and a
    screenshot of the page is kept with the test's output when `shots` is given."""
    deadline = time.monotonic() + PAGE_TIMEOUT
    missing = expected
    while time.monotonic() < deadline:
        text = driver.find_element("tag name", "body").text
        missing = [s for s in expected if s not in text]
        if not missing:
            return text
        time.sleep(0.5)
    if shots:
        shots(driver, f"failed-{name}", publish=False)
    pytest.fail(f"{what}: after {PAGE_TIMEOUT}s the page does not show {missing}")


def _open(driver: "webdriver.Chrome", url: str, expected: list[str], shots=None, name: str = "") -> str:
    driver.get(url)
    return _wait_for(driver, expected, url, shots, name)


GROUPS = ["catalog", "environments", "experience", "training", "evaluation", "studies"]


def test_asset_graph_renders(webserver, browser, shots):
    """The lineage around domain_tasks reaches every asset: the whole graph, drawn in its six groups."""
    browser.set_window_size(1920, 1000)
    names = [a.key.to_user_string() for a in ALL_ASSETS]
    # Long names are shortened in the drawing at this zoom (filt…_trajectories); the rest show in full.
    shortened = ("filtered_trajectories", "vertical_only_model", "contamination_report")
    shown = [n for n in names if n not in shortened]
    _open(
        browser,
        f"{webserver}/assets/domain_tasks?view=lineage&lineageDepth=6",
        GROUPS + shown,
        shots,
        "graph",
    )
    body = browser.find_element("tag name", "body").text
    assert "_trajectories" in body and "_report" in body
    time.sleep(3)  # node colours (materialised or not) arrive after the names
    path = shots(browser, "asset_graph")
    assert path.stat().st_size > 20_000  # a drawn graph, not a blank page


def test_domain_partitions_render(webserver, browser, shots, dagster_home):
    """All `domain` partitions are listed, airline materialised and the others missing, with airline's
    environment metadata (tables, programs) beside the list."""
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        keys = list(instance.get_dynamic_partitions("domain"))
    assert SLUG in keys
    browser.set_window_size(1600, 1000)
    expected = [
        f"{len(keys)} Partitions",
        "Materialized (1)",
        f"Missing ({len(keys) - 1})",
        *sorted(keys)[:3],
    ]
    expected += ["tools_executed", "tables", "programs"]
    url = f"{webserver}/assets/domain_environment?view=partitions&partition={SLUG}"
    _open(browser, url, expected, shots, "domain_partitions")
    shots(browser, "domain_partitions")


@pytest.mark.parametrize(
    ("name", "path", "expected"),
    [
        (
            "domains_metadata",
            "/assets/domains",
            [
                "ago",
                "funnel",
                "accepted: proven to run",
                "domain_size_histogram",
                "12-15",
                "vertical_domains",
            ],
        ),
        (
            "domain_tasks_metadata",
            f"/assets/domain_tasks?view=partitions&partition={SLUG}",
            ["Materialized", "example_tasks", "length_histogram", "strata", "gold_replay"],
        ),
        (
            "trajectory_funnel",
            "/assets/filtered_trajectories",
            ["ago", "funnel", "validity", "state_alignment", "call_match", "kept_example", "teacher_pass^1"],
        ),
        (
            "environment_checks",
            "/assets/domain_environment?view=checks",
            ["every_tool_executes", "This is a blocking asset check", "Passed", SLUG],
        ),
        (
            "automation",
            "/automation",
            ["resynthesis_schedule", "catalog_watch_sensor", "domain_partitions_sensor"],
        ),
    ],
)
def test_metadata_and_operations_render(webserver, browser, shots, name, path, expected):
    browser.set_window_size(1600, 1400)
    _open(browser, webserver + path, expected, shots, name)
    shots(browser, name)


@pytest.mark.parametrize(
    ("name", "path", "row", "expected"),
    [
        (
            "task_preview",
            f"/assets/domain_tasks?view=partitions&partition={SLUG}",
            "example_tasks",
            ["intent", "gold_calls", "arguments"],
        ),
        (
            "trajectory_preview",
            "/assets/filtered_trajectories",
            "kept_example",
            ["role", "tool_calls", "assistant"],
        ),
    ],
)
def test_task_and_trajectory_previews_render(webserver, browser, shots, name, path, row, expected):
    """A metadata JSON preview opens from its row: one task (intent, gold calls), one kept trajectory."""
    browser.set_window_size(1600, 1400)
    _open(browser, webserver + path, [row, "[Show JSON]"], shots, name)
    link = browser.find_element(
        "xpath", f"//tr[.//*[normalize-space()='{row}']]//a[normalize-space()='[Show JSON]']"
    )
    link.click()
    _wait_for(browser, expected, f"{path}: {row} preview", shots, name)
    # Opening a long preview scrolls the page to its Close button; show it from the top instead.
    browser.execute_script(
        "document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; })"
    )
    shots(browser, name)
