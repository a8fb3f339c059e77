"""The deployment files in ``deploy/`` do what docs/deployment.md says: systemd accepts the unit,
its start command serves a node and stops on the unit's signal, the compose file's command
serves a node on PostgreSQL, and the image's picture stage leaves the built picture where the
image copies it from. Each is checked with the real thing short of a container engine: systemd's
own ``systemd-analyze verify``, the real ``kuroshio serve``, the picture's own build."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest
import yaml
from federation_nodes import ServedNode, worker_roles

from cli_run import kuroshio_command
from conftest import drop_postgres_schemas
from kuroshio.federation.serve import STOP_GRACE_S
from kuroshio.federation.workers import STOP_TIMEOUT_S

pytestmark = pytest.mark.e2e

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNIT = DEPLOY / "kuroshio@.service"
READY_TIMEOUT_S = 60.0


def unit_settings(path: Path) -> dict[str, list[str]]:
    """The unit's ``[Service]`` settings, each key with every value it is given, in order."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section == "Service":
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def exec_start(command: str, instance: str, environment: Mapping[str, str]) -> list[str]:
    """``ExecStart`` as systemd runs it: ``%i`` is the instance, ``${NAME}`` one word holding
    the variable's value, ``$NAME`` its value split at white space."""
    words: list[str] = []
    for word in shlex.split(command.replace("%i", instance)):
        whole = re.fullmatch(r"\$(\w+)", word)
        if whole:
            words += environment.get(whole[1], "").split()
            continue
        words.append(re.sub(r"\$\{(\w+)\}", lambda m: environment.get(m[1], ""), word))
    return words


def unit_environment(settings: Mapping[str, list[str]], env_file: Path | None) -> dict[str, str]:
    """The variables the unit's process gets: its ``Environment=`` lines, then the lines of its
    environment file (when there is one) over them."""
    environment: dict[str, str] = {}
    for assignment in settings.get("Environment", []):
        name, _, value = assignment.partition("=")
        environment[name] = value
    if env_file is not None:
        for line in env_file.read_text().splitlines():
            name, _, value = line.partition("=")
            environment[name.strip()] = value.strip()
    return environment


def run_and_stop(
    argv: list[str], environment: Mapping[str, str], node: ServedNode, stop_signal: str
) -> tuple[str, list[str], int]:
    """Run ``kuroshio`` with ``argv`` (serving ``node``) until it prints where it serves, read
    the node's links through its operator API, then send it ``stop_signal``: (what it printed,
    the roles of the processes it started, its exit status)."""
    with node.log.open("ab") as err:
        process = subprocess.Popen(
            [*kuroshio_command(), *argv],
            stdout=subprocess.PIPE,
            stderr=err,
            env={**os.environ, **environment, "NO_COLOR": "1"},
            text=True,
        )
    assert process.stdout is not None
    try:
        printed = ""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while (operator := re.search(r"operator\s+(\S+)", printed)) is None:
            line = process.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise AssertionError(f"kuroshio did not start:\n{printed}{node.log.read_text()}")
            printed += line
        answer = httpx.get(f"{operator[1]}/api/links", headers=node.headers, timeout=30)
        assert answer.status_code == 200, answer.text
        roles = sorted(worker_roles(process.pid).values())
        process.send_signal(getattr(signal, stop_signal))
        return printed, roles, process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    """``systemd-analyze verify`` of an instance: every directive known and well formed, no
    warning. The program is looked for where the unit names it, so the copy checked names this
    checkout's ``kuroshio`` there instead: nothing else is changed."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package; make setup)")
    program = kuroshio_command()
    assert len(program) == 1, "the kuroshio command is not installed in this environment"
    text = UNIT.read_text()
    assert "ExecStart=/opt/kuroshio/.venv/bin/kuroshio " in text
    (tmp_path / UNIT.name).write_text(
        text.replace("/opt/kuroshio/.venv/bin/kuroshio", program[0], 1)
    )
    (tmp_path / "kuroshio@twn.service").symlink_to(UNIT.name)
    checked = subprocess.run(
        [analyze, "verify", "--man=no", "./kuroshio@twn.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


def test_the_units_command_serves_the_embedded_node_and_stops_on_its_signal(
    tmp_path: Path,
) -> None:
    """Without an environment file the unit runs the embedded default (one process): its
    ``ExecStart``, with systemd's expansions, serves the node until the unit's ``KillSignal``
    and then exits 0 (``Restart=on-failure`` leaves it stopped)."""
    settings = unit_settings(UNIT)
    node = ServedNode(tmp_path / "var-lib-kuroshio", "TWN")
    environment = unit_environment(settings, env_file=None)
    argv = exec_start(settings["ExecStart"][0], "twn", environment)
    assert argv[:2] == ["/opt/kuroshio/.venv/bin/kuroshio", "serve"]
    argv = [str(node.directory) if word == "/var/lib/kuroshio/twn" else word for word in argv[1:]]
    assert str(node.directory) in argv, "the unit serves /var/lib/kuroshio/<instance>"
    assert settings["ReadWritePaths"] == ["/var/lib/kuroshio/%i"]
    printed, roles, status = run_and_stop(argv, environment, node, settings["KillSignal"][0])
    assert printed.startswith("kuroshio TWN node "), printed
    assert roles == []
    assert status == 0, node.log.read_text()


def test_the_units_command_with_workers_serves_a_node_on_postgresql(
    tmp_path: Path, postgres_dsn: str
) -> None:
    """The environment file of docs/deployment.md (connection string, workers, receiving
    processes) turns the same ``ExecStart`` into the supervisor of several processes on
    PostgreSQL; the unit's signal stops them all."""
    settings = unit_settings(UNIT)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUROSHIO_STORE_DSN", postgres_dsn)
        node = ServedNode(tmp_path / "var-lib-kuroshio", "TWN", backend="postgres")
    env_file = tmp_path / "twn.env"
    env_file.write_text(
        f"KUROSHIO_STORE_DSN={postgres_dsn}\nKUROSHIO_WORKERS=2\nKUROSHIO_RECEIVERS=1\n"
    )
    assert settings["EnvironmentFile"] == ["-/etc/kuroshio/%i.env"]
    environment = unit_environment(settings, env_file)
    argv = exec_start(settings["ExecStart"][0], "twn", environment)
    assert argv[-4:] == ["--workers", "2", "--receivers", "1"]
    argv = [str(node.directory) if word == "/var/lib/kuroshio/twn" else word for word in argv[1:]]
    try:
        _, roles, status = run_and_stop(argv, environment, node, settings["KillSignal"][0])
        assert status == 0, node.log.read_text()
        assert roles == ["api", "api", "receive", "send"]
    finally:
        drop_postgres_schemas(postgres_dsn)


def test_the_compose_files_node_serves_on_postgresql(tmp_path: Path, postgres_dsn: str) -> None:
    """The compose file's ``node`` service: built from this checkout's Dockerfile, its command
    (after the image's ``kuroshio`` entry point) serves a node made in its volume, on the
    PostgreSQL service it waits for."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    service = compose["services"]["node"]
    assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "postgres" in compose["services"]
    (volume,) = service["volumes"]
    name, _, mounted = volume.partition(":")
    assert name in compose["volumes"]
    command: list[str] = service["command"]
    assert command[0] == "serve"
    node_path = command[command.index("--node") + 1]
    assert node_path.startswith(mounted + "/"), "the node directory lives in the volume"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUROSHIO_STORE_DSN", postgres_dsn)
        node = ServedNode(tmp_path / "volume", "TWN", backend="postgres")
    argv = [str(node.directory) if word == node_path else word for word in command]
    try:
        _, roles, status = run_and_stop(argv, {"KUROSHIO_STORE_DSN": postgres_dsn}, node, "SIGTERM")
        assert status == 0, node.log.read_text()
        workers = int(command[command.index("--workers") + 1])
        assert roles == ["api"] * workers + ["exchange"]
    finally:
        drop_postgres_schemas(postgres_dsn)


def test_the_unit_and_the_compose_file_give_the_node_the_time_it_takes_to_stop() -> None:
    """Killed later than it gives itself: a node lets requests in progress finish for
    ``STOP_GRACE_S``, the supervisor gives its workers ``STOP_TIMEOUT_S``, and systemd
    (``TimeoutStopSec``) and Docker (``stop_grace_period``) wait longer than both."""
    assert STOP_GRACE_S < STOP_TIMEOUT_S
    (unit_wait,) = unit_settings(UNIT)["TimeoutStopSec"]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    compose_wait = compose["services"]["node"]["stop_grace_period"]
    assert re.fullmatch(r"\d+s", compose_wait), compose_wait
    assert int(unit_wait) > STOP_TIMEOUT_S
    assert int(compose_wait[:-1]) > STOP_TIMEOUT_S


def test_the_images_picture_stage_builds_the_picture_where_the_image_takes_it(
    tmp_path: Path,
) -> None:
    """The Dockerfile's first stage, without a container engine: exactly the files its ``COPY``
    lines name, laid out under its ``WORKDIR``, built by its ``RUN`` line's build (the packages
    ``npm ci`` would fetch are taken from this checkout's set-up). The page, its script and the
    basemap must then be where the second stage's ``COPY --from`` takes them."""
    node_modules = DEPLOY.parent / "web" / "node_modules"
    if not node_modules.is_dir() or shutil.which("node") is None:
        pytest.skip("the picture's packages are not installed (make setup installs them)")
    lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    stage, workdir, copied_from = "", Path("/"), None
    for line in lines:
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "FROM":
            stage = words[-1] if "AS" in words else ""
        elif stage == "picture" and words[0] == "WORKDIR":
            workdir = Path(words[1])
        elif stage == "picture" and words[0] == "COPY":
            *sources, target = words[1:]
            into = workdir / target
            for source in sources:
                origin = DEPLOY.parent / source
                assert origin.exists(), f"the Dockerfile copies {source}, which is not here"
                placed = tmp_path / into.relative_to("/")
                if origin.is_dir():
                    shutil.copytree(origin, placed)
                elif target.endswith("/"):  # into that directory, under its own name
                    placed.mkdir(parents=True, exist_ok=True)
                    shutil.copy(origin, placed / origin.name)
                else:
                    placed.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(origin, placed)
        elif stage == "picture" and words[0] == "RUN":
            assert "npm ci" in line and "npm run build" in line
        elif words[0] == "COPY" and words[1] == "--from=picture":
            copied_from = words[2]
    assert copied_from is not None, "the image takes nothing from the picture stage"
    build_dir = tmp_path / workdir.relative_to("/")
    (build_dir / "node_modules").symlink_to(node_modules)
    subprocess.run(
        ["npm", "run", "build"], cwd=build_dir, check=True, capture_output=True, timeout=300
    )
    dist = tmp_path / Path(copied_from).relative_to("/")
    assert (dist / "index.html").is_file()
    built = {path.name for path in (dist / "assets").iterdir()}
    assert {"app.js", "app.css", "basemap.json"} <= built, built
