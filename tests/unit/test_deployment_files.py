"""compose.yaml, the Dockerfile, .dockerignore and docs/kubernetes.yaml, parsed and checked (no Docker needed)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from schemas import Tag
from services.settings import Settings, parse_tags

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_SOURCE = (ROOT / "services" / "settings.py").read_text()
DEFAULTS = Settings()

# From the Compose specification's JSON schema (compose-spec/compose-spec: schema/compose-spec.json).
COMPOSE_TOP_LEVEL = {"version", "name", "include", "services", "models", "networks", "volumes", "secrets", "configs"}
COMPOSE_SERVICE_KEYS = set(
    """
    develop deploy annotations attach build blkio_config cap_add cap_drop cgroup cgroup_parent command configs
    container_name cpu_count cpu_percent cpu_shares cpu_quota cpu_period cpu_rt_period cpu_rt_runtime cpus cpuset
    credential_spec depends_on device_cgroup_rules devices dns dns_opt dns_search domainname entrypoint env_file
    label_file environment expose extends provider external_links extra_hosts gpus group_add healthcheck hostname
    image init ipc isolation labels links logging mac_address mem_limit mem_reservation mem_swappiness memswap_limit
    network_mode models networks oom_kill_disable oom_score_adj pid pids_limit platform ports post_start pre_stop
    privileged profiles pull_policy pull_refresh_after read_only restart runtime scale security_opt shm_size secrets
    sysctls stdin_open stop_grace_period stop_signal storage_opt tmpfs tty ulimits use_api_socket user uts
    userns_mode volumes volumes_from working_dir
    """.split()
)
COMPOSE_HEALTHCHECK_KEYS = {"disable", "interval", "retries", "test", "timeout", "start_period", "start_interval"}
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def load_yaml(path: Path, *, many: bool = False) -> Any:
    try:
        import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; types-PyYAML is not a dependency
    except ImportError:
        pytest.fail("PyYAML is needed to check the deployment files: it belongs in the dev extra (`pyyaml`)")
    with path.open() as stream:
        return [d for d in yaml.safe_load_all(stream) if d] if many else yaml.safe_load(stream)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(ROOT / "compose.yaml")
    return document


@pytest.fixture(scope="module")
def consumers(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run `hfbus run`: the ones operators scale."""
    found = {name: s for name, s in compose["services"].items() if (s.get("command") or [None])[0] == "run"}
    assert found, "no service runs `hfbus run`"
    return found


def seconds(duration: str) -> float:
    """A Compose duration such as `40s`, `1m30s` or `500ms`, in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
    return sum(float(n) * scale[u] for n, u in parts)


def tags_of(command: list[str]) -> tuple[Tag, ...]:
    """The tags of a `run --tags a,b` command, checked by the same parser the CLI uses."""
    assert command[0] == "run" and command.count("--tags") == 1, command
    return parse_tags(command[command.index("--tags") + 1])


def assert_known_setting(name: str) -> None:
    assert f'"{name}"' in SETTINGS_SOURCE, f"{name} is not read by services/settings.py"


# --- compose.yaml --------------------------------------------------------------------------------------------


def test_compose_uses_only_keys_of_the_compose_specification(compose: dict[str, Any]) -> None:
    assert {k for k in compose if not k.startswith("x-")} <= COMPOSE_TOP_LEVEL
    for name, service in compose["services"].items():
        assert set(service) <= COMPOSE_SERVICE_KEYS, (name, set(service) - COMPOSE_SERVICE_KEYS)
        assert "image" in service or "build" in service, name
        if "healthcheck" in service:
            assert set(service["healthcheck"]) <= COMPOSE_HEALTHCHECK_KEYS, name
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in compose["services"], (name, dependency)
            assert rule["condition"] in DEPENDS_ON_CONDITIONS
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in compose["services"][dependency], f"{dependency} has no healthcheck"
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in (compose.get("volumes") or {}), f"{name} mounts undeclared volume {source}"


def test_nats_runs_jetstream_on_a_named_volume_with_monitoring_and_a_healthcheck(compose: dict[str, Any]) -> None:
    nats = compose["services"]["nats"]
    assert nats["image"].startswith("nats:2.10")
    command = nats["command"]
    assert "-js" in command
    data_dir = command[command.index("-sd") + 1]
    monitor_port = command[command.index("-m") + 1]
    assert any(m.split(":")[1] == data_dir for m in nats["volumes"])
    assert " ".join(nats["healthcheck"]["test"]).count(f":{monitor_port}/healthz") == 1
    published = {p.rsplit(":", 1)[-1] for p in nats.get("ports", [])}
    assert "4222" in published
    for port in nats.get("ports", []):
        assert port.startswith("127.0.0.1:"), f"{port} exposes NATS beyond this host"


def test_every_tag_is_served_by_exactly_one_consumer_service(consumers: dict[str, dict[str, Any]]) -> None:
    served = [tag for service in consumers.values() for tag in tags_of(service["command"])]
    assert sorted(served) == sorted(Tag)
    assert tags_of(consumers["chat"]["command"]) == (Tag.CHAT, Tag.PIC2TEXT)


def test_consumers_can_be_scaled(consumers: dict[str, dict[str, Any]]) -> None:
    for name, service in consumers.items():
        assert "ports" not in service, f"{name}: a host port would make `--scale {name}=3` collide"
        assert "container_name" not in service, f"{name}: a fixed name would make `--scale` fail"
        assert isinstance(service["deploy"]["replicas"], int)
        assert service["build"] == "." and (ROOT / "Dockerfile").exists()


def test_consumers_are_configured_with_settings_hfbus_reads(consumers: dict[str, dict[str, Any]]) -> None:
    for name, service in consumers.items():
        env = service["environment"]
        for key in env:
            assert_known_setting(key)
        assert env["NATS_URL"] == "nats://nats:4222", name
        assert env["HFBUS_MODE"] == "durable"
        assert env["HUGGINGFACE_API_KEY"] == "${HUGGINGFACE_API_KEY:-}", "the token comes from the operator"
        # The real router unless the operator points it elsewhere (the demo profile does).
        assert env["HF_ROUTER_URL"] == f"${{HF_ROUTER_URL:-{DEFAULTS.router_url}}}"
        assert env["HFBUS_HTTP_ADDR"] == "0.0.0.0:9464"
        assert service["depends_on"]["nats"]["condition"] == "service_healthy"


def test_consumer_healthchecks_ask_healthz_on_the_http_port_without_curl(consumers: dict[str, dict[str, Any]]) -> None:
    for name, service in consumers.items():
        port = service["environment"]["HFBUS_HTTP_ADDR"].rsplit(":", 1)[1]
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], f"{name}: the slim image has python, not curl"
        assert f"urllib.request.urlopen('http://127.0.0.1:{port}/healthz'" in test[3]
        compile(test[3], f"{name} healthcheck", "exec")


def test_consumers_get_longer_to_stop_than_their_shutdown_grace(consumers: dict[str, dict[str, Any]]) -> None:
    for name, service in consumers.items():
        assert seconds(service["stop_grace_period"]) > DEFAULTS.shutdown_grace_s, name


def test_the_fake_router_is_an_opt_in_demo_that_consumers_only_reach_when_told(
    compose: dict[str, Any], consumers: dict[str, dict[str, Any]]
) -> None:
    router = compose["services"]["fake-router"]
    assert router["profiles"] == ["demo"]
    assert "healthcheck" in router and "ports" not in router
    command = router["command"]
    assert command[:1] == ["fake-router"]
    assert command[command.index("--host") + 1] == "0.0.0.0" and command[command.index("--port") + 1] == "8089"
    for name, service in consumers.items():
        assert service["depends_on"]["fake-router"]["required"] is False, f"{name} must start without the demo"
        assert "fake-router" not in json.dumps(service["environment"])
    text = (ROOT / "compose.yaml").read_text()
    for line in (
        "COMPOSE_PROFILES=demo",
        "HF_ROUTER_URL=http://fake-router:8089",
        "HF_HUB_URL=http://fake-router:8089",
    ):
        assert line in text, f"the demo instructions lost {line!r}"


# --- Dockerfile and .dockerignore ------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            pairs.append((instruction.upper(), args.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    pairs = dockerfile()
    last_from = max(i for i, (instruction, _) in enumerate(pairs) if instruction == "FROM")
    return pairs[last_from:]


def test_the_image_is_slim_python_3_11_and_runs_as_a_non_root_user() -> None:
    stage = final_stage()
    assert stage[0] == ("FROM", "python:3.11-slim")
    users = [args for instruction, args in stage if instruction == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_the_image_installs_hfbus_without_the_dev_extra_and_runs_it() -> None:
    pairs = dockerfile()
    text = " ".join(args for _, args in pairs)
    assert "hfbus[fast]" in text or ".[fast]" in text
    assert "[dev" not in text and ",dev" not in text
    stage = dict(final_stage())
    assert json.loads(stage["ENTRYPOINT"]) == ["hfbus"]
    assert json.loads(stage["CMD"]) == ["run"]
    assert stage["EXPOSE"] == DEFAULTS.http_addr.rsplit(":", 1)[1]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "hfbus" in scripts


def test_the_kubernetes_user_is_the_image_user() -> None:
    stage = final_stage()
    uid = [args for instruction, args in stage if instruction == "USER"][-1].split(":")[0]
    for document in load_yaml(ROOT / "docs" / "kubernetes.yaml", many=True):
        if document["kind"] == "Deployment":
            assert str(document["spec"]["template"]["spec"]["securityContext"]["runAsUser"]) == uid


def test_dockerignore_lets_in_only_what_the_dockerfile_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "**", "exclude everything, then let the build inputs back in"
    allowed = {p.removeprefix("!").rstrip("/") for p in patterns if p.startswith("!")}
    for instruction, args in dockerfile():
        if instruction == "COPY" and "--from" not in args:
            *sources, _ = args.split()
            for source in sources:
                assert source.rstrip("/") in allowed, f"COPY {source} but .dockerignore leaves it out"
                if "*" not in source:
                    assert (ROOT / source).exists(), source


# --- docs/kubernetes.yaml --------------------------------------------------------------------------------------


def test_the_kubernetes_example_has_probes_a_secret_token_and_every_tag() -> None:
    documents = load_yaml(ROOT / "docs" / "kubernetes.yaml", many=True)
    config = next(d for d in documents if d["kind"] == "ConfigMap")
    for key in config["data"]:
        assert_known_setting(key)
    port = int(config["data"]["HFBUS_HTTP_ADDR"].rsplit(":", 1)[1])
    served: list[Tag] = []
    deployments = [d for d in documents if d["kind"] == "Deployment"]
    assert deployments
    for deployment in deployments:
        spec = deployment["spec"]
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["terminationGracePeriodSeconds"] > DEFAULTS.shutdown_grace_s
        (container,) = pod["containers"]
        served.extend(tags_of(container["args"]))
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = container[probe]["httpGet"]
            assert get["path"] == path
            assert ports.get(get["port"], get["port"]) == port
        env = {e["name"]: e for e in container["env"]}
        for name in env:
            assert_known_setting(name)
        token = env["HUGGINGFACE_API_KEY"]
        assert "value" not in token and "secretKeyRef" in token["valueFrom"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert sorted(served) == sorted(Tag)
