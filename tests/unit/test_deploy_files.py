"""deploy/: the Dockerfile, docker-compose.yml, .env.example and the worker's entrypoint.

Images cannot be built or run here, so these tests read the files: the structure that matters,
the environment names against the real Settings, no secret written down. Where the
``docker compose`` plugin is installed, the compose file also goes through
``docker compose config``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from pipeline_lib.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
ENV_EXAMPLE = DEPLOY / ".env.example"
ENTRYPOINT = DEPLOY / "worker-entrypoint.sh"

# Read by deploy/prefect.yaml's pull step (set by the image), not a setting of the runs.
REPO_DIR_VARIABLE = "PIPELINE_REPO_DIR"
# `${NAME:?message}`: compose refuses to start when NAME is unset or empty.
REQUIRED = re.compile(r"\$\{(\w+):\?[^}]*\}")
# user:password@ in a URL
URL_PASSWORD = re.compile(r"://[^/:@\s]+:(\$\{[^}]*\}|[^@\s/]+)@")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the list form, NAME=value
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {k: None if v is None else str(v) for k, v in env.items()}


def interpolate(value: str) -> str:
    """Compose's ${NAME:?msg} and ${NAME:-default}, with a dummy password."""
    value = REQUIRED.sub(lambda m: "dummy-password" if "PASSWORD" in m.group(1) else "x", value)
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def setting_path(name: str) -> list[str]:
    """PIPELINE_TRAINING__MAX_EPOCHS -> ["training", "max_epochs"], checked against Settings;
    raises KeyError naming the first part that is not a field."""
    assert name.startswith("PIPELINE_"), name
    parts = name.removeprefix("PIPELINE_").lower().split("__")
    model: type[BaseModel] | None = Settings
    for i, part in enumerate(parts):
        if model is None:  # a dict field (credentials): any key
            break
        field = model.model_fields.get(part)
        if field is None:
            raise KeyError(f"{name}: {part!r} is not a field of {model.__name__}")
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif getattr(annotation, "__origin__", None) is dict:
            model = None
        elif i != len(parts) - 1:
            raise KeyError(f"{name}: {part!r} has no sub-fields")
    return parts


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    out = []
    for line in lines:
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def env_example() -> dict[str, str]:
    """NAME -> value of deploy/.env.example, commented-out examples (# NAME=value) included."""
    found = {}
    for raw in ENV_EXAMPLE.read_text().splitlines():
        m = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", raw.strip())
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


# --- docker-compose.yml


def test_three_services_with_their_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "prefect-server", "worker"} <= set(services)

    pg = services["postgres"]
    assert pg["image"].startswith("postgres:15")
    assert any(v.endswith(":/var/lib/postgresql/data") for v in pg["volumes"])
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])

    # The server runs the Prefect release the project pins, on the project's Python.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pin = next(d for d in pyproject["project"]["dependencies"] if d.startswith("prefect=="))
    server = services["prefect-server"]
    assert server["image"] == f"prefecthq/prefect:{pin.removeprefix('prefect==')}-python3.11"
    assert server["command"][:3] == ["prefect", "server", "start"]
    assert "0.0.0.0" in server["command"]
    assert any(str(p).endswith(":4200") for p in server["ports"])
    assert "/api/health" in " ".join(server["healthcheck"]["test"])


def test_prefect_keeps_its_state_in_its_own_postgres_database(compose: dict[str, Any]) -> None:
    server_env = environment(compose["services"]["prefect-server"])
    url = interpolate(server_env["PREFECT_API_DATABASE_CONNECTION_URL"] or "")
    assert url.startswith("postgresql+asyncpg://") and "@postgres:5432/" in url
    prefect_db = url.rsplit("/", 1)[1]
    pipeline_db = environment(compose["services"]["postgres"])["POSTGRES_DB"]
    assert prefect_db != pipeline_db
    # the postgres image runs deploy/postgres-init/ on an empty volume: it creates that database
    init = [
        v for v in compose["services"]["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v
    ]
    assert init, "the postgres service mounts no init scripts"
    init_dir = DEPLOY / init[0].split(":")[0]
    scripts = " ".join(p.read_text() for p in sorted(init_dir.glob("*.sql")))
    assert re.search(rf"CREATE DATABASE\s+\"?{re.escape(prefect_db)}\"?\s*;", scripts)


def test_worker_waits_for_healthy_server_and_database(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    depends = worker["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["prefect-server"]["condition"] == "service_healthy"
    assert compose["services"]["prefect-server"]["depends_on"]["postgres"]["condition"] == (
        "service_healthy"
    )


def test_worker_is_built_from_the_dockerfile_and_points_at_the_services(
    compose: dict[str, Any],
) -> None:
    worker = compose["services"]["worker"]
    build = worker["build"]
    assert (COMPOSE_FILE.parent / build["context"]).resolve() == ROOT
    assert (ROOT / build["dockerfile"]).resolve() == DOCKERFILE
    env = environment(worker)
    assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    db_url = interpolate(env["PIPELINE_DATABASE_URL"] or "")
    assert db_url.startswith("postgresql+psycopg://") and "@postgres:5432/" in db_url
    assert db_url.rsplit("/", 1)[1] == environment(compose["services"]["postgres"])["POSTGRES_DB"]
    # the data folder is a named volume (flow runs of a Docker pool mount the same volume)
    data_dir = env["PIPELINE_DATA_DIR"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in worker["volumes"]}
    assert data_dir in mounts and mounts[data_dir] in compose["volumes"]


def test_the_read_api_serves_the_worker_s_data_read_only(compose: dict[str, Any]) -> None:
    api, worker = compose["services"]["api"], compose["services"]["worker"]
    assert api["image"] == worker["image"]  # the worker's build
    assert api["command"][:2] == ["forecast-pipeline", "serve"]
    assert any(str(p).endswith(":8000:8000") for p in api["ports"])
    assert "localhost:8000/health" in " ".join(api["healthcheck"]["test"])
    env, worker_env = environment(api), environment(worker)
    assert env["PIPELINE_DATA_DIR"] == worker_env["PIPELINE_DATA_DIR"]
    assert env["PIPELINE_DATABASE_URL"] == worker_env["PIPELINE_DATABASE_URL"]
    assert [v for v in api["volumes"] if v.endswith(":ro")] == [
        f"pipeline-data:{env['PIPELINE_DATA_DIR']}:ro"
    ]
    # the artifacts' plots link to the reports folder as the api service publishes it
    reports = interpolate(worker_env["PIPELINE_SERVE__REPORTS_URL"] or "")
    assert reports == interpolate(env["PIPELINE_SERVE__PUBLIC_URL"] or "") + "/reports"


def test_worker_command_prepares_deploys_then_polls(compose: dict[str, Any]) -> None:
    command = compose["services"]["worker"]["command"]
    assert "deploy/worker-entrypoint.sh" in command
    steps = [
        line.strip()
        for line in ENTRYPOINT.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    script = "\n".join(steps)
    assert "set -euo pipefail" in script
    order = [
        script.index("forecast-pipeline db upgrade"),
        script.index("forecast-pipeline deploy"),
        script.index("exec prefect worker start"),
    ]
    assert order == sorted(order)
    worker_start = next(s for s in steps if s.startswith("exec prefect worker start"))
    assert "--pool" in shlex.split(worker_start) and "--with-healthcheck" in worker_start
    # `forecast-pipeline deploy` is what creates the work pool and the concurrency limit and
    # runs `prefect deploy --prefect-file deploy/prefect.yaml --all`: it must exist.
    from flows.cli import build_parser

    assert build_parser().parse_args(["deploy"]).command == "deploy"
    # the worker's healthcheck asks the worker's own health endpoint
    assert "/health" in " ".join(compose["services"]["worker"]["healthcheck"]["test"])


def test_every_pipeline_variable_is_a_real_setting(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A misspelt PIPELINE_* name would be ignored silently by the settings; catch it here."""
    names: dict[str, str | None] = {}
    for service in compose["services"].values():
        names.update({k: v for k, v in environment(service).items() if k.startswith("PIPELINE_")})
    names.update({k: v for k, v in env_example().items() if k.startswith("PIPELINE_")})
    for keyword, args in dockerfile_instructions():
        if keyword == "ENV":
            names.update(dict(re.findall(r"(PIPELINE_\w+)=(\S+)", args)))
    assert "PIPELINE_DATABASE_URL" in names and "PIPELINE_DATA_DIR" in names

    repo_dir = names.pop(REPO_DIR_VARIABLE, None)
    assert repo_dir == "/opt/forecast-pipeline", "the image must set PIPELINE_REPO_DIR"
    assert "$PIPELINE_REPO_DIR" in (DEPLOY / "prefect.yaml").read_text()
    for name in names:
        setting_path(name)  # KeyError names the bad part

    # ... and the values given validate, together.
    for name in [n for n in os.environ if n.startswith("PIPELINE_")]:
        monkeypatch.delenv(name)
    for name, value in names.items():
        if value:
            if name == "PIPELINE_DATA_DIR":
                value = str(tmp_path / "data")  # a path that exists on this machine
            monkeypatch.setenv(name, interpolate(value))
    settings = load_settings()
    assert settings.db_url.startswith("postgresql+psycopg://")


def test_the_setting_check_catches_typos() -> None:
    assert setting_path("PIPELINE_TRAINING__MAX_EPOCHS") == ["training", "max_epochs"]
    assert setting_path("PIPELINE_CREDENTIALS__ANY_NAME")
    for bad in ("PIPELINE_DATABASE", "PIPELINE_TRAINING__MAX_EPOCH", "PIPELINE_HORIZON__X"):
        with pytest.raises(KeyError):
            setting_path(bad)


# --- Dockerfile


def test_dockerfile_python_311_cpu_torch_before_the_project() -> None:
    instructions = dockerfile_instructions()
    froms = [args for keyword, args in instructions if keyword == "FROM"]
    assert len(froms) == 1 and re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", froms[0])

    args = {}
    for keyword, rest in instructions:
        if keyword == "ARG" and "=" in rest:
            name, value = rest.split("=", 1)
            args[name] = value.strip('"')

    def expand(text: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), text)

    runs = [expand(rest) for keyword, rest in instructions if keyword == "RUN"]
    torch_at = next(i for i, r in enumerate(runs) if re.search(r"pip install .*\btorch\b", r))
    assert "download.pytorch.org/whl/cpu" in runs[torch_at] and "--index-url" in runs[torch_at]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    torch_req = next(d for d in pyproject["project"]["dependencies"] if d.startswith("torch"))
    assert torch_req in runs[torch_at], f"pin CPU torch as pyproject does: {torch_req}"

    # the project (editable: sql/views.sql is read from the checkout) with both extras
    project_at = max(i for i, r in enumerate(runs) if re.search(r"pip install .*-e \.", r))
    extras_at = next(i for i, r in enumerate(runs) if "[postgres,dask]" in r)
    assert torch_at < extras_at <= project_at

    keywords = [keyword for keyword, _ in instructions]
    user = [rest for keyword, rest in instructions if keyword == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert len(keywords) - 1 - keywords[::-1].index("RUN") < keywords.index("USER")
    assert ("WORKDIR", "/opt/forecast-pipeline") in instructions
    env = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    assert "PIPELINE_REPO_DIR=/opt/forecast-pipeline" in env


def test_dockerignore_keeps_secrets_and_bulk_out() -> None:
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "data", "**/__pycache__", "deploy/.env"} <= patterns
    # what the build needs stays in
    assert not {"README.md", "pyproject.toml", "sql", "deploy", "pipeline_lib"} & patterns


# --- secrets


def test_no_password_written_in_the_deploy_files(compose: dict[str, Any]) -> None:
    files = [COMPOSE_FILE, DOCKERFILE, ENV_EXAMPLE, ENTRYPOINT, *DEPLOY.glob("postgres-init/*")]
    for path in files:
        text = path.read_text()
        for m in URL_PASSWORD.finditer(text):
            assert REQUIRED.fullmatch(m.group(1)), f"{path.name}: a literal password in a URL"
        # every use of the password makes compose fail when it is not set
        assert not re.search(r"\$\{?POSTGRES_PASSWORD(?!:\?)", text), path.name

    assert environment(compose["services"]["postgres"])["POSTGRES_PASSWORD"].startswith(
        "${POSTGRES_PASSWORD:?"
    )
    assert env_example()["POSTGRES_PASSWORD"] == "", ".env.example must leave it empty"
    assert "PASSWORD" not in DOCKERFILE.read_text().upper()
    # deploy/.env holds the real one: never committed, never sent to docker build
    assert "deploy/.env" in (ROOT / ".gitignore").read_text().split()


# --- docker compose config, where the plugin is installed


def _compose_cli() -> list[str]:
    if shutil.which("docker") is None:
        pytest.skip("docker CLI not installed: `docker compose config` not run")
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        pytest.skip(
            "the docker compose plugin is not installed (`docker compose version` exited "
            f"{probe.returncode}): `docker compose config` not run"
        )
    return ["docker", "compose", "--env-file", os.devnull, "-f", str(COMPOSE_FILE)]


def test_docker_compose_config_accepts_the_file() -> None:
    cli = _compose_cli()
    env = {**os.environ, "POSTGRES_PASSWORD": "dummy-for-config"}
    done = subprocess.run(
        [*cli, "config", "--quiet"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr

    env.pop("POSTGRES_PASSWORD")
    refused = subprocess.run(
        [*cli, "config", "--quiet"], capture_output=True, text=True, env=env, timeout=60
    )
    assert refused.returncode != 0 and "POSTGRES_PASSWORD" in refused.stderr
